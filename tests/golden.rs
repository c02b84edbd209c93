//! Golden scenarios: `tests/golden/*.scn`, format in `tests/golden/README.md`.
//!
//! Each scenario's events are replayed through exactly the code `jiancha replay` runs, and every
//! alert printed is compared, in order, with the hand-worked `[expect]` section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ingest::decode::DecodeOptions;
use rules::time::parse_rfc3339;
use rules::{Engine, Policy};
use serde_json::Value;

#[derive(Default)]
struct Scenario {
    policy: String,
    events: Vec<(usize, String)>,
    until: Option<String>,
    expect: Vec<(usize, String)>,
    invalid: Vec<String>,
}

fn parse(text: &str) -> Result<Scenario, String> {
    let mut s = Scenario::default();
    let mut section = "";
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = match trimmed {
                "[policy]" | "[events]" | "[until]" | "[expect]" | "[invalid]" => trimmed,
                other => return Err(format!("line {n}: unknown section {other}")),
            };
            continue;
        }
        match section {
            "[policy]" => {
                s.policy.push_str(line);
                s.policy.push('\n');
            }
            "[events]" => s.events.push((n, trimmed.to_string())),
            "[until]" => s.until = Some(trimmed.to_string()),
            "[expect]" => s.expect.push((n, trimmed.to_string())),
            "[invalid]" => s.invalid.push(trimmed.to_string()),
            _ => return Err(format!("line {n}: text outside a section")),
        }
    }
    Ok(s)
}

/// Fill the harness defaults into one event line (kept verbatim if it is not a JSON object, so
/// invalid-input scenarios can feed raw text).
fn with_defaults(n: usize, line: &str) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut m)) => {
            m.entry("event_id")
                .or_insert_with(|| format!("ev-{n}").into());
            m.entry("center_id").or_insert_with(|| "PJ".into());
            m.entry("region").or_insert_with(|| "430626".into());
            Value::Object(m).to_string()
        }
        _ => line.to_string(),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
        _ => v.get(key),
    })
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn summary(a: &Value) -> String {
    let status = match a["status"].as_str() {
        Some("retracted") => "retracted ",
        Some("cleared") => "cleared ",
        _ => "",
    };
    format!(
        "{status}{} {} {} {}",
        show(&a["fired_at"]),
        show(&a["rule"]),
        show(&a["level"]),
        a.get("case_id").map_or("-".into(), |c| if c.is_null() {
            "-".into()
        } else {
            show(c)
        })
    )
}

/// Compare one expected line with one alert; `None` if it matches.
fn mismatch(expected: &str, alert: &Value) -> Option<String> {
    let mut tokens = expected.split_whitespace().peekable();
    let want_status = match tokens.peek() {
        Some(&s @ ("retracted" | "cleared")) => {
            tokens.next();
            s
        }
        _ => "open",
    };
    let head: Vec<&str> = tokens.by_ref().take(4).collect();
    if head.len() < 4 {
        return Some(format!("malformed expectation {expected:?}"));
    }
    let mut problems = Vec::new();
    let checks = [
        ("status", want_status),
        ("fired_at", head[0]),
        ("rule", head[1]),
        ("level", head[2]),
        ("case_id", head[3]),
    ];
    for (field, want) in checks {
        let got = alert.get(field).map_or("-".to_string(), show);
        let got = if got == "null" { "-".to_string() } else { got };
        if got != want {
            problems.push(format!("{field}: want {want}, got {got}"));
        }
    }
    for pair in tokens {
        let Some((path, want)) = pair.split_once('=') else {
            problems.push(format!("malformed check {pair:?}"));
            continue;
        };
        let got = lookup(alert, path).map_or("<absent>".to_string(), show);
        if got != want {
            problems.push(format!("{path}: want {want}, got {got}"));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// A scenario file and the policy it runs under.
fn load(path: &Path, loaded: &ingest::reference_dir::Loaded) -> Result<(Scenario, Policy), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let sc = parse(&text)?;
    let policy = if sc.policy.trim().is_empty() {
        loaded.policy.clone()
    } else {
        Policy::parse("[policy]", &sc.policy).map_err(|e| e.to_string())?
    };
    Ok((sc, policy))
}

fn run(path: &Path, loaded: &ingest::reference_dir::Loaded) -> Result<(), String> {
    let (sc, policy) = load(path, loaded)?;
    let until = match &sc.until {
        Some(u) => Some(parse_rfc3339(u).map_err(|e| format!("[until] {u:?}: {e}"))?),
        None => None,
    };
    let input: String = sc
        .events
        .iter()
        .map(|(n, l)| with_defaults(*n, l) + "\n")
        .collect();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(Arc::new(loaded.reference.clone()), policy);
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    ingest::replay::replay(
        &mut engine,
        input.as_bytes(),
        until,
        opts,
        &mut out,
        &mut diag,
    )
    .map_err(|e| e.to_string())?;
    let diag = String::from_utf8_lossy(&diag);
    let mut report = String::new();
    for line in diag.lines() {
        if !sc.invalid.iter().any(|want| line.contains(want.as_str())) {
            let _ = writeln!(report, "  unexpected diagnostic: {line}");
        }
    }
    for want in &sc.invalid {
        if !diag.contains(want.as_str()) {
            let _ = writeln!(
                report,
                "  expected diagnostic containing {want:?}, got none"
            );
        }
    }
    let alerts: Vec<Value> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("output is not JSON: {e}: {l}")))
        .collect::<Result<_, _>>()?;
    let n = alerts.len().max(sc.expect.len());
    for i in 0..n {
        match (sc.expect.get(i), alerts.get(i)) {
            (Some((line, want)), Some(got)) => {
                if let Some(why) = mismatch(want, got) {
                    let _ = writeln!(
                        report,
                        "  line {line}: {why}\n    want {want}\n    got  {}",
                        summary(got)
                    );
                }
            }
            (Some((line, want)), None) => {
                let _ = writeln!(report, "  line {line}: missing alert {want}");
            }
            (None, Some(got)) => {
                let _ = writeln!(report, "  unexpected alert {}", summary(got));
            }
            (None, None) => {}
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        let actual: Vec<String> = alerts.iter().map(summary).collect();
        Err(format!(
            "{report}  all alerts produced:\n    {}",
            actual.join("\n    ")
        ))
    }
}

/// Replay a scenario restarting the engine from a snapshot after every event; the printed alerts
/// must be byte-identical to the uninterrupted run. And `jiancha replay`'s output must be
/// byte-identical to the uninterrupted run's lines other than revisions (replay pipelines three
/// threads and has the engine build the revisions it drops lean).
fn run_restarting(path: &Path, loaded: &ingest::reference_dir::Loaded) -> Result<(), String> {
    let (sc, policy) = load(path, loaded)?;
    // A small duplicate filter keeps ~1,500 snapshots fast; no scenario comes near its size.
    let policy = Policy {
        dedup_capacity: 1024,
        ..policy
    };
    let until = sc.until.as_deref().and_then(|u| parse_rfc3339(u).ok());
    let reference = Arc::new(loaded.reference.clone());
    let opts = DecodeOptions::replay(&policy);
    let print = |alerts: &mut Vec<rules::Alert>, out: &mut String| {
        // Revisions included: a restart must not change what stores receive either.
        for a in alerts.drain(..) {
            out.push_str(&serde_json::to_string(&a).unwrap_or_default());
            out.push('\n');
        }
    };
    let (mut straight, mut restarted, mut printed) = (String::new(), String::new(), String::new());
    let mut input = String::new();
    let mut a = Engine::new(reference.clone(), policy.clone());
    let mut b = Engine::new(reference.clone(), policy.clone());
    let mut alerts = Vec::new();
    for (n, line) in &sc.events {
        let line = with_defaults(*n, line);
        input.push_str(&line);
        input.push('\n');
        let Ok(ev) = ingest::decode_str(&line, &opts) else {
            continue;
        };
        let _ = a.on_event(&ev, &mut alerts);
        print_lines(&alerts, &mut printed);
        print(&mut alerts, &mut straight);
        let image = b.snapshot().map_err(|e| e.to_string())?;
        b = Engine::restore(reference.clone(), policy.clone(), &image)
            .map_err(|e| format!("restore before line {n}: {e}"))?;
        let _ = b.on_event(&ev, &mut alerts);
        print(&mut alerts, &mut restarted);
    }
    if let Some(until) = until {
        a.advance_to(until, &mut alerts);
        print_lines(&alerts, &mut printed);
        print(&mut alerts, &mut straight);
        let image = b.snapshot().map_err(|e| e.to_string())?;
        b = Engine::restore(reference.clone(), policy.clone(), &image)
            .map_err(|e| e.to_string())?;
        b.advance_to(until, &mut alerts);
        print(&mut alerts, &mut restarted);
    }
    if straight != restarted {
        return Err(format!(
            "restarting after every event changed the output:\n--- uninterrupted\n{straight}--- restarted\n{restarted}"
        ));
    }
    let mut replayed = Vec::new();
    let mut engine = Engine::new(reference, policy);
    ingest::replay::replay(
        &mut engine,
        input.as_bytes(),
        until,
        opts,
        &mut replayed,
        std::io::sink(),
    )
    .map_err(|e| e.to_string())?;
    let replayed = String::from_utf8_lossy(&replayed);
    if replayed != printed {
        return Err(format!(
            "replay's output is not the engine's lines without revisions:\n--- replay\n{replayed}--- engine\n{printed}"
        ));
    }
    Ok(())
}

/// The lines `jiancha replay` prints of these alerts: all but revisions.
fn print_lines(alerts: &[rules::Alert], out: &mut String) {
    for a in alerts.iter().filter(|a| !a.is_revision()) {
        out.push_str(&serde_json::to_string(a).unwrap_or_default());
        out.push('\n');
    }
}

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "scn"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reference");
    let loaded = ingest::reference_dir::load(&dir, None).expect("golden reference data is valid");
    let files = scenarios();
    assert!(files.len() >= 40, "only {} golden scenarios", files.len());
    let only = std::env::var("GOLDEN").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        ran += 1;
        if let Err(e) = run(path, &loaded) {
            failures.push(format!("{name}:\n{e}"));
        }
    }
    assert!(ran > 0, "no scenario matched GOLDEN={only:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} golden scenarios failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn golden_scenarios_survive_a_restart_after_every_event() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reference");
    let loaded = ingest::reference_dir::load(&dir, None).expect("golden reference data is valid");
    let failures: Vec<String> = scenarios()
        .iter()
        .filter_map(|p| {
            run_restarting(p, &loaded)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_harness_catches_a_wrong_expectation() {
    let alert = serde_json::json!({
        "status": "open", "fired_at": "2026-10-11T00:00:00+08:00", "rule": "case.overdue",
        "level": "yellow", "case_id": "C1", "evidence": {"deadline_date": "2026-10-10",
        "provisional_years": [2027]}
    });
    assert_eq!(
        mismatch("2026-10-11T00:00:00+08:00 case.overdue yellow C1 evidence.deadline_date=2026-10-10 evidence.provisional_years.0=2027", &alert),
        None
    );
    assert!(mismatch("2026-10-12T00:00:00+08:00 case.overdue yellow C1", &alert).is_some());
    assert!(mismatch(
        "retracted 2026-10-11T00:00:00+08:00 case.overdue yellow C1",
        &alert
    )
    .is_some());
    assert!(mismatch(
        "2026-10-11T00:00:00+08:00 case.overdue yellow C1 evidence.deadline_date=2026-10-09",
        &alert
    )
    .is_some());
}

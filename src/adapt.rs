//! `jiancha adapt` (SPEC §9 Offline) and `jiancha lint`: the files of a reference directory's
//! adapter configuration read from disk for the pure `adapters` crate, rows in, events out.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use adapters::{Adapter, Codes, Format};
use ingest::reference_dir::Loaded;
use ingest::DecodeOptions;
use rules::Engine;

use crate::EXIT_UNUSABLE;

/// `DIR/adapters/<format>.toml` over the defaults, and `DIR/sources.csv`; problems as
/// `file:line: reason`.
pub fn config(dir: &Path, format: Format) -> Result<(Codes, Option<String>), Vec<String>> {
    let mut problems = Vec::new();
    let path = dir
        .join("adapters")
        .join(format!("{}.toml", format.as_str()));
    let codes = match fs::read_to_string(&path) {
        Ok(text) => Codes::parse(format, &text).unwrap_or_else(|errors| {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| located(&path, e.line, &e.reason)),
            );
            Codes::defaults(format)
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Codes::defaults(format),
        Err(e) => {
            problems.push(format!("{}: cannot read: {e}", path.display()));
            Codes::defaults(format)
        }
    };
    let sources_path = dir.join("sources.csv");
    let sources = match fs::read_to_string(&sources_path) {
        Ok(text) => {
            if let Err(errors) = adapters::parse_sources(&text) {
                problems.extend(
                    errors
                        .into_iter()
                        .map(|e| located(&sources_path, e.line, &e.reason)),
                );
            }
            Some(text)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(format!("{}: cannot read: {e}", sources_path.display()));
            None
        }
    };
    if problems.is_empty() {
        Ok((codes, sources))
    } else {
        Err(problems)
    }
}

/// The source systems of `DIR/sources.csv` (none without the file), as the dashboards name
/// them; problems as `file:line: reason`.
pub fn source_entries(dir: &Path) -> Result<Vec<dashboard_api::SourceEntry>, Vec<String>> {
    let path = dir.join("sources.csv");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(vec![format!("{}: cannot read: {e}", path.display())]),
    };
    let rows = adapters::parse_source_list(&text).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| located(&path, e.line, &e.reason))
            .collect::<Vec<_>>()
    })?;
    Ok(rows
        .into_iter()
        .map(|s| dashboard_api::SourceEntry {
            source: s.source,
            name: s.name,
            center_id: s.center_id,
            region: s.region,
            vendor: s.vendor,
            transport: s.transport,
        })
        .collect())
}

/// What the format endpoints (`/api/v1/ingest/…`) map records with: every format's code
/// tables and `sources.csv` (none without a directory); problems as `file:line: reason`.
pub fn format_settings(
    dir: Option<&Path>,
) -> Result<dashboard_api::formats::FormatSettings, Vec<String>> {
    let Some(dir) = dir else {
        return Ok(dashboard_api::formats::FormatSettings::default());
    };
    let mut codes = Vec::new();
    let mut sources_csv = None;
    for format in Format::ALL {
        let (c, s) = config(dir, format)?;
        codes.push((format, c));
        sources_csv = s;
    }
    Ok(dashboard_api::formats::FormatSettings::new(
        codes,
        sources_csv,
    ))
}

fn located(path: &Path, line: Option<usize>, reason: &str) -> String {
    match line {
        Some(l) => format!("{}:{l}: {reason}", path.display()),
        None => format!("{}: {reason}", path.display()),
    }
}

/// `jiancha check`'s part: every format's code file and sources.csv. Returns the problems
/// (printed by the caller) and notes.
pub fn check(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for format in Format::ALL {
        match config(dir, format) {
            Ok(_) => {}
            Err(p) => problems.extend(p),
        }
        let path = dir
            .join("adapters")
            .join(format!("{}.toml", format.as_str()));
        if dir.join("adapters").is_dir() && !path.exists() {
            notes.push(format!(
                "{} absent: the {} adapter uses the default code tables (docs/ADAPTERS.md)",
                path.display(),
                format.as_str()
            ));
        }
    }
    if let Ok(entries) = fs::read_dir(dir.join("adapters")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let known = name.strip_suffix(".toml").and_then(Format::parse).is_some();
            if !known {
                problems.push(format!(
                    "{}: not an adapter configuration (expected sdjc.toml, gdbs.toml or gb39046.toml)",
                    entry.path().display()
                ));
            }
        }
    }
    problems.dedup();
    (problems, notes)
}

fn open(input: &Path) -> io::Result<Box<dyn BufRead>> {
    Ok(if input.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(BufReader::with_capacity(1 << 20, fs::File::open(input)?))
    })
}

fn adapter<'r>(
    dir: &Path,
    reference: &'r rules::Reference,
    format: Format,
    source: Option<&str>,
) -> Result<Adapter<'r>, ExitCode> {
    let fail = |problems: Vec<String>| {
        for p in &problems {
            eprintln!("error: {p}");
        }
        ExitCode::from(EXIT_UNUSABLE)
    };
    let (codes, sources) = config(dir, format).map_err(fail)?;
    Adapter::new(format, codes, reference, sources.as_deref(), source).map_err(|e| {
        fail(
            e.into_iter()
                .map(|e| located(&dir.join("sources.csv"), e.line, &e.reason))
                .collect(),
        )
    })
}

/// `jiancha adapt`: rows on `input`, events on stdout in input order, dead letters on stderr
/// (`line N: reason column: message`).
pub fn adapt(
    dir: &Path,
    loaded: &Loaded,
    format: Format,
    source: Option<&str>,
    input: &Path,
) -> ExitCode {
    let mut adapter = match adapter(dir, &loaded.reference, format, source) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let reader = match open(input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot open {}: {e}", input.display());
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut err = io::stderr().lock();
    let (mut rows, mut events, mut dead) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading {}: {e}", input.display());
                return ExitCode::FAILURE;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        buf.clear();
        match adapter.adapt_line(&line, &mut buf) {
            Ok(()) => {
                for ev in &buf {
                    events += 1;
                    if writeln!(out, "{}", ev.to_json()).is_err() {
                        return ExitCode::SUCCESS; // a closed pipe: the reader has had enough
                    }
                }
            }
            Err(d) => {
                dead += 1;
                let _ = writeln!(err, "line {}: {d}", n + 1);
            }
        }
    }
    let _ = out.flush();
    let _ = writeln!(
        err,
        "adapt: {rows} rows, {events} events, {dead} dead letters (source {})",
        adapter.source()
    );
    ExitCode::SUCCESS
}

/// What `jiancha lint` takes.
pub struct LintArgs {
    /// A sample of §3 events.
    pub events: Option<PathBuf>,
    /// A sample of a format's rows.
    pub format: Option<(Format, PathBuf)>,
}

/// `jiancha lint`: a sample checked against the schema (the decoder), the code tables (the
/// adapter) and the catalogue and jurisdiction (the engine, as replay applies it); a summary
/// per reason with line numbers. Exit 1 when anything is wrong.
pub fn lint(dir: &Path, loaded: Loaded, args: LintArgs) -> ExitCode {
    let (path, format) = match (&args.events, &args.format) {
        (Some(p), None) => (p.clone(), None),
        (None, Some((f, p))) => (p.clone(), Some(*f)),
        _ => {
            eprintln!("error: lint takes --events FILE or --format F FILE");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let reference = Arc::new(loaded.reference);
    let mut adapter = match format {
        Some(f) => match adapter(dir, &reference, f, None) {
            Ok(a) => Some(a),
            Err(code) => return code,
        },
        None => None,
    };
    let reader = match open(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot open {}: {e}", path.display());
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let opts = DecodeOptions::replay(&loaded.policy);
    let mut engine = Engine::new(reference.clone(), loaded.policy);
    let mut findings: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let (mut lines, mut good) = (0usize, 0usize);
    let mut alerts = Vec::new();
    let mut buf = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let texts: Vec<String> = match adapter.as_mut() {
            Some(a) => {
                buf.clear();
                match a.adapt_line(&line, &mut buf) {
                    Ok(()) => buf.iter().map(adapters::Event::to_json).collect(),
                    Err(d) => {
                        let key = match &d.column {
                            Some(c) => format!("{} ({c})", d.reason),
                            None => d.reason.to_string(),
                        };
                        findings.entry(key).or_default().push(n + 1);
                        continue;
                    }
                }
            }
            None => vec![line],
        };
        let mut ok = true;
        for text in &texts {
            match ingest::decode_str(text, &opts) {
                Err(e) => {
                    ok = false;
                    let key = match e.field {
                        Some(f) => format!("{} ({f})", e.code.as_str()),
                        None => e.code.as_str().to_string(),
                    };
                    findings.entry(key).or_default().push(n + 1);
                }
                Ok(ev) => {
                    if let Err(r) = engine.on_event(&ev, &mut alerts) {
                        ok = false;
                        findings
                            .entry(format!("{} ({})", r.code(), r.field()))
                            .or_default()
                            .push(n + 1);
                    }
                    alerts.clear();
                }
            }
        }
        good += usize::from(ok);
    }
    println!("{}: {lines} lines, {good} clean", path.display());
    for (reason, at) in &findings {
        let shown: Vec<String> = at.iter().take(10).map(usize::to_string).collect();
        let more = if at.len() > 10 { ", …" } else { "" };
        println!(
            "  {reason}: {} (lines {}{more})",
            at.len(),
            shown.join(", ")
        );
    }
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

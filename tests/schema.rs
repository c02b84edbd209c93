//! `docs/jiancha.event.v1.schema.json` (JSON Schema 2020-12) held to the decoder: over the
//! decoder's accept and reject corpus — the fuzz seeds (`fuzz/corpus/decode`, which include a
//! line of every kind and the hostile inputs), every golden scenario's events, and every event
//! the adapters make from `tests/equivalence`'s rows — the schema accepts what the decoder accepts
//! and rejects what it rejects, except for the few checks a schema cannot make, listed below
//! by corpus entry with the reason.
//!
//! The validator is Python's `jsonschema` (installed by scripts/test.sh with check-jsonschema).
//! Run by hand without it the test is skipped; with `CI` set it fails.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use ingest::decode::{decode, DecodeOptions, Receipt};

/// Inputs the decoder refuses and a schema cannot: each with why.
const SCHEMA_CANNOT: &[(&str, &str)] = &[
    (
        "seed-bad-future",
        "occurred_at too far after receipt: relative to the receipt time",
    ),
    (
        "seed-bad-leap_second",
        "occurred_at too far after receipt: relative to the receipt time",
    ),
    (
        "seed-bad-offset_minus_2359",
        "the year range holds in UTC+08:00, after the offset is applied",
    ),
    (
        "seed-bad-offset_plus_2359",
        "the year range holds in UTC+08:00, after the offset is applied",
    ),
    (
        "seed-bad-long_reason",
        "lengths are bytes to the decoder, characters to the schema (this reason is CJK)",
    ),
    (
        "seed-bad-feb_30",
        "a date that does not exist: calendars are beyond a pattern",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (name, bytes) of every corpus entry.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seeds: Vec<_> = std::fs::read_dir(root().join("fuzz/corpus/decode"))
        .expect("fuzz corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    seeds.sort();
    for p in seeds {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        out.push((name, std::fs::read(&p).expect("seed")));
    }
    // the examples of docs/EVENTS.md (one of every kind)
    let events_md = std::fs::read_to_string(root().join("docs/EVENTS.md")).expect("EVENTS.md");
    let mut in_block = false;
    for (i, line) in events_md.lines().enumerate() {
        if line.starts_with("```") {
            in_block = line == "```ndjson";
            continue;
        }
        if in_block {
            out.push((format!("EVENTS.md:{}", i + 1), line.as_bytes().to_vec()));
        }
    }
    // every line of a kind with each field in turn removed, null, blank or of another type
    let kinds: Vec<(String, serde_json::Map<String, serde_json::Value>)> = out
        .iter()
        .filter(|(n, _)| n.starts_with("seed-kind-"))
        .filter_map(|(n, b)| Some((n.clone(), serde_json::from_slice(b).ok()?)))
        .collect();
    for (n, object) in kinds {
        for key in object.keys() {
            let variants = [
                ("without", None),
                ("null", Some(serde_json::Value::Null)),
                ("blank", Some(serde_json::Value::from(" "))),
                ("number", Some(serde_json::Value::from(7))),
                ("text", Some(serde_json::Value::from("x"))),
            ];
            for (how, value) in variants {
                let mut m = object.clone();
                match value {
                    None => {
                        m.remove(key);
                    }
                    Some(v) => {
                        m.insert(key.clone(), v);
                    }
                }
                out.push((
                    format!("{n}:{key}:{how}"),
                    serde_json::Value::Object(m).to_string().into_bytes(),
                ));
            }
        }
    }
    let mut scenarios: Vec<_> = std::fs::read_dir(root().join("tests/golden"))
        .expect("golden")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    scenarios.sort();
    for p in scenarios {
        let text = std::fs::read_to_string(&p).expect("scenario");
        let mut in_events = false;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_events = t == "[events]";
                continue;
            }
            if !in_events || t.is_empty() || t.starts_with('#') {
                continue;
            }
            // the harness's defaults
            let filled = match serde_json::from_str::<serde_json::Value>(t) {
                Ok(serde_json::Value::Object(mut m)) => {
                    m.entry("event_id")
                        .or_insert_with(|| format!("ev-{i}").into());
                    m.entry("center_id").or_insert_with(|| "PJ".into());
                    m.entry("region").or_insert_with(|| "430626".into());
                    serde_json::Value::Object(m).to_string()
                }
                _ => t.to_string(),
            };
            let name = format!(
                "{}:{}",
                p.file_name().unwrap_or_default().to_string_lossy(),
                i + 1
            );
            out.push((name, filled.into_bytes()));
        }
    }
    // what the adapters make of the equivalence cases' rows
    let dir = root().join("tests/equivalence");
    let loaded = ingest::reference_dir::load(&dir.join("reference"), None).expect("reference");
    let sources = std::fs::read_to_string(dir.join("reference/sources.csv")).ok();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("equivalence")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eqv"))
        .collect();
    cases.sort();
    for p in cases {
        let text = std::fs::read_to_string(&p).expect("case");
        let mut adapter: Option<adapters::Adapter<'_>> = None;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some(section) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                adapter = adapters::Format::parse(section).map(|f| {
                    adapters::Adapter::new(
                        f,
                        adapters::Codes::defaults(f),
                        &loaded.reference,
                        sources.as_deref(),
                        None,
                    )
                    .expect("adapter")
                });
                continue;
            }
            let Some(a) = adapter.as_mut() else { continue };
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut events = Vec::new();
            if a.adapt_line(t, &mut events).is_ok() {
                for (k, e) in events.iter().enumerate() {
                    let name = format!(
                        "{}:{}:{k}",
                        p.file_name().unwrap_or_default().to_string_lossy(),
                        i + 1
                    );
                    out.push((name, e.to_json().into_bytes()));
                }
            }
        }
    }
    out
}

const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1], encoding="utf-8"))
validator = jsonschema.Draft202012Validator(schema)
for line in sys.stdin.buffer.read().split(b"\n")[:-1]:
    text = json.loads(line)
    try:
        doc = json.loads(text)
    except ValueError:
        print("reject"); continue
    print("accept" if validator.is_valid(doc) else "reject")
"#;

#[test]
fn the_schema_agrees_with_the_decoder_on_its_corpus() {
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jsonschema {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 jsonschema is missing (scripts/test.sh installs it)"
        );
        eprintln!("skipped: python3 jsonschema is missing");
        return;
    }
    let corpus = corpus();
    assert!(corpus.len() > 500, "{} inputs", corpus.len());
    let mut child = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(root().join("docs/jiancha.event.v1.schema.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut input = Vec::new();
    for (_, bytes) in &corpus {
        let text = String::from_utf8_lossy(bytes);
        input.extend_from_slice(serde_json::to_string(&text).expect("string").as_bytes());
        input.push(b'\n');
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write");
    let out = child.wait_with_output().expect("validator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(verdicts.len(), corpus.len());
    let opts = DecodeOptions {
        receipt: Receipt::ReportedAt,
        default_source: None,
        max_future_skew_secs: 600,
    };
    let (mut accepted, mut rejected) = (0, 0);
    let mut disagreements = Vec::new();
    for ((name, bytes), schema) in corpus.iter().zip(&verdicts) {
        let decoder = decode(bytes, &opts);
        match (&decoder, schema.as_str()) {
            (Ok(_), "accept") => accepted += 1,
            (Err(_), "reject") => rejected += 1,
            (Ok(_), _) => {
                disagreements.push(format!("{name}: the decoder accepts, the schema rejects"))
            }
            (Err(e), _) => {
                let key = name.as_str();
                if !SCHEMA_CANNOT.iter().any(|(n, _)| *n == key) {
                    disagreements.push(format!(
                        "{name}: the decoder rejects ({e}), the schema accepts"
                    ));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // docs/EVENTS.md shows every kind, and every example is accepted
    let examples: Vec<_> = corpus
        .iter()
        .filter(|(n, _)| n.starts_with("EVENTS.md:"))
        .collect();
    for kind in rules::Kind::ALL {
        assert!(
            examples.iter().any(|(_, b)| String::from_utf8_lossy(b)
                .contains(&format!("\"kind\": \"{}\"", kind.as_str()))),
            "docs/EVENTS.md has no example of {}",
            kind.as_str()
        );
    }
    for (name, bytes) in examples {
        assert!(decode(bytes, &opts).is_ok(), "{name} is refused");
    }
    // Every listed exception is still one (a fixed schema drops it from the list).
    for (n, why) in SCHEMA_CANNOT {
        let i = corpus
            .iter()
            .position(|(name, _)| name == n)
            .unwrap_or_else(|| panic!("{n} not in the corpus"));
        assert_eq!(
            verdicts[i], "accept",
            "{n} ({why}) is no longer an exception"
        );
        assert!(decode(&corpus[i].1, &opts).is_err());
    }
    assert!(
        accepted > 400 && rejected > 30,
        "{accepted} accepted, {rejected} rejected"
    );
}

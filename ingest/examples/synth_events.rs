//! Writes a synthetic event stream (NDJSON) and its reference directory, for timing
//! `jiancha replay` end to end:
//!
//! ```text
//! cargo run --release -p ingest --example synth_events -- DIR OPEN_CASES EVENTS [PER_DAY] [--stdout] [--reported]
//! jiancha replay --reference DIR --events DIR/events.ndjson > /dev/null
//! ```
//!
//! `PER_DAY` (default 3,000,000) sets how fast event time runs; `--stdout` writes the events
//! to standard output instead of `DIR/events.ndjson` (to compress them on the way: a
//! province-year does not fit on a small disk uncompressed). `--reported` gives every event a
//! `reported_at` equal to its `occurred_at` (window systems that report at once), for feeding
//! the history to live ingest: without it, every event would be judged by its receipt time and
//! flagged `hall.late_report`.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use rules::synth::{self, Workload};

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |args: &mut Vec<String>, name: &str| {
        let on = args.iter().any(|a| a == name);
        args.retain(|a| a != name);
        on
    };
    let to_stdout = flag(&mut args, "--stdout");
    let reported = flag(&mut args, "--reported");
    let dir = PathBuf::from(args.first().map_or("synth-out", String::as_str));
    let open: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let events: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let per_day: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    fs::create_dir_all(&dir)?;
    let files = synth::reference_files();
    for (name, text) in [files.items, files.windows, files.staff]
        .into_iter()
        .flatten()
    {
        let file = name.rsplit('/').next().unwrap_or(&name).to_string();
        fs::write(dir.join(file), text)?;
    }
    let path = dir.join("events.ndjson");
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(fs::File::create(&path)?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut workload = Workload::new(42, open, per_day);
    let mut written = 0usize;
    let mut error = None;
    workload.warm_up(open, |l| {
        if let Err(e) = writeln!(out, "{}", line(reported, l)) {
            error.get_or_insert(e);
        }
        written += 1;
    });
    if let Some(e) = error {
        return Err(e);
    }
    let mut buf = String::new();
    while written < open + events {
        buf.clear();
        workload.next_line(&mut buf);
        for l in buf.split('\n') {
            writeln!(out, "{}", line(reported, l))?;
            written += 1;
        }
    }
    out.flush()?;
    let to = if to_stdout {
        "standard output".to_string()
    } else {
        path.display().to_string()
    };
    eprintln!("{written} events to {to}, up to {}", workload.now());
    Ok(())
}

/// `l` as written: with `reported_at` when asked.
fn line(reported: bool, l: &str) -> std::borrow::Cow<'_, str> {
    if reported {
        std::borrow::Cow::Owned(synth::with_reported_at(l))
    } else {
        std::borrow::Cow::Borrowed(l)
    }
}

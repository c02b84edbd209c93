//! `jiancha replay` (SPEC §8): NDJSON events in file order through the engine, alerts out.
//!
//! Lives here rather than in the binary so tests drive exactly the code the command runs.

use std::io::{self, BufRead, Write};

use rules::{Alert, Engine, Instant, Outcome};

use crate::decode::{decode_str, DecodeOptions};

/// Counts from one replay, reported on stderr by the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Lines read (including blank ones).
    pub lines: u64,
    /// Events applied.
    pub applied: u64,
    /// Lines that were not valid events (reported with line number and reason).
    pub invalid: u64,
    /// Valid events the engine refused (e.g. unknown item).
    pub rejected: u64,
    /// Duplicate `event_id`s ignored.
    pub duplicates: u64,
    /// Alert lines printed (firings and retractions).
    pub alerts: u64,
}

/// Replay `input` through `engine`, printing alerts as NDJSON on `out` and problems on `diag`.
/// After the last event the clock advances to `until` when given. Only I/O errors fail.
pub fn replay<R: BufRead, W: Write, D: Write>(
    engine: &mut Engine,
    mut input: R,
    until: Option<Instant>,
    opts: &DecodeOptions,
    mut out: W,
    mut diag: D,
) -> io::Result<ReplaySummary> {
    let mut summary = ReplaySummary::default();
    let mut line = String::new();
    let mut alerts: Vec<Alert> = Vec::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        summary.lines += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        match decode_str(text, opts) {
            Err(e) => {
                summary.invalid += 1;
                writeln!(diag, "line {}: {e}", summary.lines)?;
            }
            Ok(ev) => match engine.on_event(&ev, &mut alerts) {
                Ok(Outcome::Duplicate) => summary.duplicates += 1,
                Ok(_) => summary.applied += 1,
                Err(rejection) => {
                    summary.rejected += 1;
                    writeln!(
                        diag,
                        "line {}: {}: {rejection}",
                        summary.lines,
                        rejection.code()
                    )?;
                }
            },
        }
        summary.alerts += write_alerts(&mut out, &mut alerts)?;
    }
    if let Some(until) = until {
        engine.advance_to(until, &mut alerts);
        summary.alerts += write_alerts(&mut out, &mut alerts)?;
    }
    out.flush()?;
    Ok(summary)
}

fn write_alerts<W: Write>(out: &mut W, alerts: &mut Vec<Alert>) -> io::Result<u64> {
    let n = alerts.len() as u64;
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut *out, &alert)?;
        out.write_all(b"\n")?;
    }
    Ok(n)
}

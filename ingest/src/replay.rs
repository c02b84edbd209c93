//! `jiancha replay` (SPEC §8): NDJSON events in file order through the engine, alerts out.
//!
//! Lives here rather than in the binary so tests drive exactly the code the command runs.

use std::io::{self, BufRead, Write};

use rules::{Alert, Engine, Event, Instant, Outcome};

use crate::decode::{decode_str, DecodeError, DecodeOptions};

/// Lines decoded together before they are applied.
pub const BLOCK_EVENTS: usize = 256;

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
    let mut alerts: Vec<Alert> = Vec::new();
    // A block of lines at a time: decoded together, then applied in order with the engine's
    // lookahead (its memory loads for the next events overlap the current one's work).
    let mut text = String::new();
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(BLOCK_EVENTS);
    let mut more = true;
    while more {
        text.clear();
        spans.clear();
        while spans.len() < BLOCK_EVENTS {
            let start = text.len();
            if input.read_line(&mut text)? == 0 {
                more = false;
                break;
            }
            spans.push((start, text.len()));
        }
        let first = summary.lines + 1;
        summary.lines += spans.len() as u64;
        let block: Vec<Option<Result<Event<'_>, DecodeError>>> = spans
            .iter()
            .map(|&(a, b)| {
                let line = text[a..b].trim_end_matches(['\n', '\r']);
                (!line.trim().is_empty()).then(|| decode_str(line, opts))
            })
            .collect();
        for (k, decoded) in block.iter().enumerate() {
            engine.lookahead(&block, k, |d| d.as_ref()?.as_ref().ok());
            let line = first + k as u64;
            match decoded {
                None => continue,
                Some(Err(e)) => {
                    summary.invalid += 1;
                    writeln!(diag, "line {line}: {e}")?;
                }
                Some(Ok(ev)) => match engine.on_event(ev, &mut alerts) {
                    Ok(Outcome::Duplicate) => summary.duplicates += 1,
                    Ok(_) => summary.applied += 1,
                    Err(rejection) => {
                        summary.rejected += 1;
                        writeln!(diag, "line {line}: {}: {rejection}", rejection.code())?;
                    }
                },
            }
            summary.alerts += write_alerts(&mut out, &mut alerts)?;
        }
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

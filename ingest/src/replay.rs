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
///
/// Alerts are serialised and written on a second thread, a block at a time and in order, so
/// a replay uses two cores: one decodes and applies, the other prints. The printer flushes
/// whenever it has caught up, so output is never held back for long.
pub fn replay<R: BufRead, W: Write + Send, D: Write>(
    engine: &mut Engine,
    input: R,
    until: Option<Instant>,
    opts: &DecodeOptions,
    mut out: W,
    diag: D,
) -> io::Result<ReplaySummary> {
    // Set when the printer stops early (a closed pipe, a full disk): the reading half then
    // stops too, even while its blocks raise no alerts to hand over.
    let stopped = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (blocks, received) = std::sync::mpsc::sync_channel::<Vec<Alert>>(16);
        let stopped = &stopped;
        let printer = scope.spawn(move || {
            let printed = print(&mut out, received);
            stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            printed
        });
        let applied = apply(engine, input, until, opts, diag, &blocks, stopped);
        drop(blocks);
        let printed = printer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the alert printer panicked")));
        // The printer's error (a closed pipe, a full disk) is the reason the reading stopped.
        printed.and(applied)
    })
}

/// The printing half of [`replay`]: each block's alerts as NDJSON lines, in order.
fn print<W: Write>(out: &mut W, received: std::sync::mpsc::Receiver<Vec<Alert>>) -> io::Result<()> {
    use std::sync::mpsc::TryRecvError;
    loop {
        let mut alerts = match received.try_recv() {
            Ok(alerts) => alerts,
            // Flushed whenever the printer would wait: a reader downstream sees alerts
            // as they are found, and a closed pipe stops the replay at once.
            Err(TryRecvError::Empty) => {
                out.flush()?;
                match received.recv() {
                    Ok(alerts) => alerts,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        write_alerts(out, &mut alerts)?;
    }
    out.flush()
}

/// The reading half of [`replay`]: decode and apply, handing each block's alerts to `blocks`.
fn apply<R: BufRead, D: Write>(
    engine: &mut Engine,
    mut input: R,
    until: Option<Instant>,
    opts: &DecodeOptions,
    mut diag: D,
    blocks: &std::sync::mpsc::SyncSender<Vec<Alert>>,
    printer_stopped: &std::sync::atomic::AtomicBool,
) -> io::Result<ReplaySummary> {
    let stopped = || io::Error::other("the alert printer stopped");
    let mut summary = ReplaySummary::default();
    let mut alerts: Vec<Alert> = Vec::new();
    // A block of lines at a time: decoded together, then applied in order with the engine's
    // lookahead (its memory loads for the next events overlap the current one's work).
    let mut text = String::new();
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(BLOCK_EVENTS);
    let mut more = true;
    while more {
        if printer_stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(stopped());
        }
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
                None => {}
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
        }
        // Revisions (an alert again with its case's new state) are for stores, not lines of
        // the replay: SPEC §8 prints firings, retractions and clearings.
        alerts.retain(|a| !a.is_revision());
        if !alerts.is_empty() {
            summary.alerts += alerts.len() as u64;
            blocks
                .send(std::mem::take(&mut alerts))
                .map_err(|_| stopped())?;
        }
    }
    if let Some(until) = until {
        engine.advance_to(until, &mut alerts);
        alerts.retain(|a| !a.is_revision());
        summary.alerts += alerts.len() as u64;
        blocks.send(alerts).map_err(|_| stopped())?;
    }
    Ok(summary)
}

fn write_alerts<W: Write>(out: &mut W, alerts: &mut Vec<Alert>) -> io::Result<()> {
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut *out, &alert)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

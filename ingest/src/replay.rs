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

/// A block of input lines and the events decoded from them (one entry per line; `None` for a
/// blank one), which borrow from the lines: decoded on the reading thread, applied on the
/// engine's, with nothing copied in between.
type Decoded<'a> = Vec<Option<Result<Event<'a>, DecodeError>>>;

self_cell::self_cell!(
    struct Block {
        owner: String,
        #[covariant]
        dependent: Decoded,
    }
);

/// Replay `input` through `engine`, printing alerts as NDJSON on `out` and problems on `diag`.
/// After the last event the clock advances to `until` when given. Only I/O errors fail.
///
/// Three threads in a pipeline, a block of lines at a time and in order: one reads and
/// decodes, one applies (the calling thread), one serialises and prints the alerts, so a
/// replay keeps two cores busy. The printer flushes whenever it has caught up, so output is
/// never held back for long.
pub fn replay<R: BufRead + Send, W: Write + Send, D: Write>(
    engine: &mut Engine,
    input: R,
    until: Option<Instant>,
    opts: DecodeOptions<'static>,
    mut out: W,
    diag: D,
) -> io::Result<ReplaySummary> {
    // Revisions are dropped below: the engine need not build them in full. The caller's
    // setting comes back on return, for an engine that goes on to feed stores.
    let lean_before = engine.builds_lean_revisions();
    engine.lean_revisions(true);
    // Set when the printer stops early (a closed pipe, a full disk): the applying thread then
    // stops too, even while its blocks raise no alerts to hand over.
    let stopped = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let (alerts, printed) = std::sync::mpsc::sync_channel::<Vec<Alert>>(16);
        let (blocks, decoded) = std::sync::mpsc::sync_channel::<io::Result<Block>>(8);
        // Each applied block's text goes back to the reader, whose next block reuses it.
        let (spare, spares) = std::sync::mpsc::channel::<String>();
        let stopped = &stopped;
        let printer = scope.spawn(move || {
            let result = print(&mut out, printed);
            stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            result
        });
        scope.spawn(move || read(input, opts, &blocks, &spares));
        let applied = apply(engine, until, diag, decoded, &spare, &alerts, stopped);
        drop(alerts);
        let printed = printer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the alert printer panicked")));
        // The printer's error (a closed pipe, a full disk) is the reason the applying stopped.
        printed.and(applied)
    });
    engine.lean_revisions(lean_before);
    result
}

/// The printing stage of [`replay`]: each block's alerts as NDJSON lines, in order.
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

/// The reading stage of [`replay`]: blocks of [`BLOCK_EVENTS`] lines, decoded. Stops at the
/// end of the input, at a read error (handed on, after the blocks before it), or when the
/// applying stage has stopped taking blocks.
fn read<R: BufRead>(
    mut input: R,
    opts: DecodeOptions<'static>,
    blocks: &std::sync::mpsc::SyncSender<io::Result<Block>>,
    spares: &std::sync::mpsc::Receiver<String>,
) {
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(BLOCK_EVENTS);
    loop {
        let mut text = spares.try_recv().unwrap_or_default();
        text.clear();
        spans.clear();
        let mut failed = None;
        while spans.len() < BLOCK_EVENTS {
            let start = text.len();
            match input.read_line(&mut text) {
                Ok(0) => break,
                Ok(_) => spans.push((start, text.len())),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let full = spans.len() == BLOCK_EVENTS;
        if !spans.is_empty() {
            let block = Block::new(text, |text| {
                spans
                    .iter()
                    .map(|&(a, b)| {
                        let line = text[a..b].trim_end_matches(['\n', '\r']);
                        (!line.trim().is_empty()).then(|| decode_str(line, &opts))
                    })
                    .collect()
            });
            if blocks.send(Ok(block)).is_err() {
                return;
            }
        }
        if let Some(e) = failed {
            let _ = blocks.send(Err(e));
            return;
        }
        if !full {
            return;
        }
    }
}

/// The applying stage of [`replay`]: each decoded block through the engine, in order, its
/// alerts handed to the printer.
fn apply<D: Write>(
    engine: &mut Engine,
    until: Option<Instant>,
    mut diag: D,
    decoded: std::sync::mpsc::Receiver<io::Result<Block>>,
    spare: &std::sync::mpsc::Sender<String>,
    printer: &std::sync::mpsc::SyncSender<Vec<Alert>>,
    printer_stopped: &std::sync::atomic::AtomicBool,
) -> io::Result<ReplaySummary> {
    let stopped = || io::Error::other("the alert printer stopped");
    let mut summary = ReplaySummary::default();
    let mut alerts: Vec<Alert> = Vec::new();
    for block in decoded {
        if printer_stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(stopped());
        }
        let block = block?;
        block.with_dependent(|_, block| -> io::Result<()> {
            let first = summary.lines + 1;
            summary.lines += block.len() as u64;
            // Applied in order with the engine's lookahead (its memory loads for the next
            // events overlap the current one's work).
            for (k, decoded) in block.iter().enumerate() {
                engine.lookahead(block, k, |d| d.as_ref()?.as_ref().ok());
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
            Ok(())
        })?;
        // The reader may have finished; its next block then allocates anew.
        let _ = spare.send(block.into_owner());
        // Revisions (an alert again with its case's new state) are for stores, not lines of
        // the replay: SPEC §8 prints firings, retractions and clearings.
        alerts.retain(|a| !a.is_revision());
        if !alerts.is_empty() {
            summary.alerts += alerts.len() as u64;
            printer
                .send(std::mem::take(&mut alerts))
                .map_err(|_| stopped())?;
        }
    }
    if let Some(until) = until {
        engine.advance_to(until, &mut alerts);
        alerts.retain(|a| !a.is_revision());
        summary.alerts += alerts.len() as u64;
        printer.send(alerts).map_err(|_| stopped())?;
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

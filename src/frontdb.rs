//! Wiring of the front-database pollers (`[[frontdb]]`, docs/ADAPTERS.md "Front databases"):
//! the configuration section, its checks, and the two handovers — the embedded mode's SQLite
//! ingest log (`jiancha serve`) and cluster mode's events topic (`jiancha poll`).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use adapters::{Adapter, Event, Format};
use confdoc::section;
use frontdb::{DeadRow, Handover, HandoverError, Mode, Position, Settings};
use serde::{Deserialize, Serialize};
use store::rows::{seconds, DeadLetterRow};
use store::sqlite::{LogEntry, SqliteStore};
use store::{CheckpointKey, RowBatch, Store};

/// The checkpoint group positions are stored under (topic: `<source>/<table>`).
const GROUP: &str = "frontdb";

/// How a source marks what was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollMode {
    /// Write time (`time_column`) with the primary key as tie-break; jiancha keeps the
    /// watermark.
    Watermark,
    /// A flag column (`flag_column`) set to `flag_done` after the rows are durable.
    Flag,
}

section! {
    /// One front database (前置库) polled for a format's tables (`serve`: into the ingest log;
    /// `poll`: into the events topic). Table `[[frontdb]]`, one per source; docs/ADAPTERS.md.
    pub struct FrontDbSection {
        /// Source name: events carry it as `source` (source health), its `sources.csv` row
        /// places records without a centre, and positions are kept under it.
        name: String = String::new();
        /// The tables' format: `sdjc`, `gdbs` or `gb39046`.
        format: String = "sdjc".into();
        /// `postgresql://user:password@host:port/database` or `mysql://…` (MariaDB, MySQL).
        url: String = String::new();
        /// Tables polled, in this order each round (acceptances before steps, fees and
        /// ratings); empty: every table of the format. `schema.table` is allowed.
        tables: Vec<String> = Vec::new();
        /// `watermark` or `flag`.
        mode: PollMode = PollMode::Watermark;
        /// Write-time column (watermark; flag mode reads in its order). Empty: the format's
        /// (`MAKETIME`, `INSERTTIME`, `cd_time`).
        time_column: String = String::new();
        /// Flag column (flag mode). Empty: the format's (`SIGNSTATE`, `REC_FLAG`, `is_sync`).
        flag_column: String = String::new();
        /// The flag's value once taken; any other value (or NULL) is new.
        flag_done: String = "1".into();
        /// Watermark mode takes rows written at least this long ago (a transaction committing
        /// late must not be overtaken by the watermark).
        settle_seconds: u64 = 2;
        /// Rows read per statement.
        batch_rows: usize = 5000;
        /// Pause after a round that found nothing new.
        interval_milliseconds: u64 = 1000;
        /// At start-up the adapter relearns the cases of the rows taken in this many days
        /// before the watermark (a completion row without department or centre is placed by
        /// its case's acceptance); 0: not at all.
        warm_days: u32 = 30;
    }
}

fn default_time(format: Format) -> &'static str {
    match format {
        Format::Sdjc => "MAKETIME",
        Format::Gdbs => "INSERTTIME",
        Format::Gb39046 => "cd_time",
    }
}

fn default_flag(format: Format) -> &'static str {
    match format {
        Format::Sdjc => "SIGNSTATE",
        Format::Gdbs => "REC_FLAG",
        Format::Gb39046 => "is_sync",
    }
}

/// Every problem of the `[[frontdb]]` tables as (index, key, reason).
pub fn validate(sections: &[FrontDbSection]) -> Vec<(usize, &'static str, String)> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, s) in sections.iter().enumerate() {
        if s.name.is_empty() || s.name.len() > 64 || s.name.contains('/') {
            out.push((
                i,
                "name",
                "a source name is 1 to 64 characters without /".into(),
            ));
        } else if !names.insert(s.name.as_str()) {
            out.push((
                i,
                "name",
                format!("source {:?} is configured twice", s.name),
            ));
        }
        let format = Format::parse(&s.format);
        match format {
            None => out.push((
                i,
                "format",
                format!("expected sdjc, gdbs or gb39046, found {:?}", s.format),
            )),
            Some(f) => {
                for t in &s.tables {
                    let bare = t.rsplit('.').next().unwrap_or(t);
                    if !f
                        .tables()
                        .iter()
                        .any(|known| known.eq_ignore_ascii_case(bare))
                    {
                        out.push((
                            i,
                            "tables",
                            format!(
                                "{t:?} is not a {} table ({})",
                                f.as_str(),
                                f.tables().join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        if frontdb::client::Driver::of_url(&s.url).is_none() {
            out.push((i, "url", "expected postgresql://… or mysql://…".into()));
        }
        for (key, v) in [
            ("tables", s.tables.join(",")),
            ("time_column", s.time_column.clone()),
            ("flag_column", s.flag_column.clone()),
        ] {
            for name in v.split(',').filter(|n| !n.is_empty()) {
                if !frontdb::dialect::plain_identifier(name) {
                    out.push((
                        i,
                        key,
                        format!("{name:?} is not a plain SQL name (letters, digits, _ and $)"),
                    ));
                }
            }
        }
        if s.batch_rows == 0 {
            out.push((i, "batch_rows", "at least 1".into()));
        }
    }
    out
}

/// The poller's settings of a checked section.
pub fn settings(s: &FrontDbSection) -> Settings {
    let format = Format::parse(&s.format).unwrap_or(Format::Sdjc);
    let or = |v: &str, d: &str| {
        if v.is_empty() {
            d.to_string()
        } else {
            v.to_string()
        }
    };
    let mode = match s.mode {
        PollMode::Watermark => Mode::Watermark {
            time_column: or(&s.time_column, default_time(format)),
            settle_seconds: s.settle_seconds,
        },
        PollMode::Flag => Mode::Flag {
            column: or(&s.flag_column, default_flag(format)),
            done: s.flag_done.clone(),
            time_column: (!s.time_column.is_empty()).then(|| s.time_column.clone()),
        },
    };
    Settings {
        name: s.name.clone(),
        format,
        url: s.url.clone(),
        tables: if s.tables.is_empty() {
            format.tables().iter().map(|t| t.to_string()).collect()
        } else {
            s.tables.clone()
        },
        mode,
        batch_rows: s.batch_rows.max(1),
        interval: Duration::from_millis(s.interval_milliseconds),
        warm_days: s.warm_days,
    }
}

/// Start one thread per source, each with its own handover (`make`). The adapters read the
/// code tables and `sources.csv` of `dir`; problems are returned as lines.
pub fn start<H: Handover + 'static>(
    sections: &[FrontDbSection],
    dir: &Path,
    reference: Arc<rules::Reference>,
    registry: &prometheus::Registry,
    stop: Arc<AtomicBool>,
    make: impl Fn() -> H,
) -> Result<Vec<std::thread::JoinHandle<()>>, Vec<String>> {
    if sections.is_empty() {
        return Ok(Vec::new());
    }
    let metrics = frontdb::Metrics::new(registry).map_err(|e| vec![format!("metrics: {e}")])?;
    let mut threads = Vec::new();
    for s in sections {
        let settings = settings(s);
        let (codes, sources) = crate::adapt::config(dir, settings.format)?;
        let reference = reference.clone();
        let (metrics, stop, handover) = (metrics.clone(), stop.clone(), make());
        // Checked here, so a bad sources.csv stops the start rather than the thread.
        Adapter::new(
            settings.format,
            codes.clone(),
            &reference,
            sources.as_deref(),
            Some(&settings.name),
        )
        .map_err(|e| {
            e.into_iter()
                .map(|e| format!("sources.csv:{}: {}", e.line.unwrap_or(0), e.reason))
                .collect::<Vec<_>>()
        })?;
        let thread = std::thread::Builder::new()
            .name(format!("frontdb-{}", settings.name))
            .spawn(move || {
                let name = settings.name.clone();
                let Ok(adapter) = Adapter::new(
                    settings.format,
                    codes,
                    &reference,
                    sources.as_deref(),
                    Some(&name),
                ) else {
                    return;
                };
                frontdb::Poller::new(settings, adapter, Box::new(handover), metrics, stop).run();
            })
            .map_err(|e| vec![format!("starting a poller thread: {e}")])?;
        threads.push(thread);
    }
    Ok(threads)
}

fn key(topic: &str) -> CheckpointKey<'_> {
    CheckpointKey {
        group_id: GROUP,
        topic,
        partition: 0,
    }
}

fn dead_row(d: &DeadRow, now: i64) -> DeadLetterRow {
    DeadLetterRow {
        received_at: seconds(rules::Instant(now)),
        source: d.origin.clone(),
        reason: d.reason.clone(),
        field: d.field.clone(),
        message: d.message.clone(),
        raw: d.raw.clone(),
    }
}

/// The rows taken so far, the version under which a position is stored (stores keep the
/// highest).
fn taken(p: &Position) -> i64 {
    i64::try_from(p.taken).unwrap_or(i64::MAX)
}

fn now() -> i64 {
    dashboard_api::wall_now().0
}

/// The newest stored position of `key` in `store`.
async fn load_position<S: Store>(
    store: &S,
    topic: &str,
) -> Result<Option<Position>, HandoverError> {
    let k = key(topic);
    let fail = |e: store::StoreError| HandoverError(e.to_string());
    let Some(meta) = store.checkpoints(k).await.map_err(fail)?.into_iter().next() else {
        return Ok(None);
    };
    let bytes = store.checkpoint_data(k, &meta).await.map_err(fail)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| HandoverError(format!("stored position of {topic} unreadable: {e}")))
}

/// Embedded mode: a batch, its dead letters and the new position in one SQLite transaction
/// with the ingest log. Events the decoder refuses become dead letters there and then, as on
/// `POST /api/v1/events`.
pub struct EmbeddedHandover {
    /// The embedded process's database.
    pub store: SqliteStore,
    /// Its runtime (the store's calls are async).
    pub rt: tokio::runtime::Handle,
    /// The policy's future skew (seconds), as HTTP ingest applies it.
    pub skew: i64,
}

impl Handover for EmbeddedHandover {
    fn load(&mut self, topic: &str) -> Result<Option<Position>, HandoverError> {
        self.rt.block_on(load_position(&self.store, topic))
    }

    fn commit(
        &mut self,
        events: &[Event],
        dead: &[DeadRow],
        positions: &[(String, Position)],
    ) -> Result<(), HandoverError> {
        let now = now();
        let mut entries = Vec::with_capacity(events.len());
        let mut refused: Vec<DeadLetterRow> = dead.iter().map(|d| dead_row(d, now)).collect();
        let opts = ingest::decode::DecodeOptions {
            receipt: ingest::decode::Receipt::At(rules::Instant(now)),
            default_source: None,
            max_future_skew_secs: self.skew,
        };
        for e in events {
            let line = e.to_json();
            match ingest::decode::decode(line.as_bytes(), &opts) {
                Ok(_) => entries.push((
                    LogEntry {
                        received_at: now,
                        source: format!("frontdb:{}", e.source),
                        payload: line.into_bytes(),
                    },
                    rules::event_identity(&e.region, &e.source, &e.event_id),
                )),
                Err(err) => refused.push(DeadLetterRow {
                    received_at: seconds(rules::Instant(now)),
                    source: format!("frontdb:{}:{}", e.source, e.event_id),
                    reason: err.code.as_str().to_string(),
                    field: err.field.unwrap_or("").to_string(),
                    message: err.message,
                    raw: line,
                }),
            }
        }
        let positions = positions
            .iter()
            .map(|(topic, p)| {
                (
                    key(topic),
                    taken(p),
                    serde_json::to_vec(p).unwrap_or_default(),
                )
            })
            .collect();
        self.rt
            .block_on(self.store.append_polled(entries, refused, positions))
            .map(|_| ())
            .map_err(|e| HandoverError(e.to_string()))
    }
}

/// Cluster mode: events produced to the events topic (key `center_id`) and acknowledged by
/// the brokers; then dead letters and the position stored in ClickHouse.
pub struct ClusterHandover {
    /// Producer (acks=all).
    pub producer: rdkafka::producer::FutureProducer,
    /// The events topic.
    pub topic: String,
    /// Where dead letters and positions go.
    pub store: store::clickhouse::ClickHouseStore,
    /// Runtime for both.
    pub rt: tokio::runtime::Handle,
    /// Alternating checkpoint slot.
    pub slot: u8,
}

impl Handover for ClusterHandover {
    fn load(&mut self, topic: &str) -> Result<Option<Position>, HandoverError> {
        self.rt.block_on(load_position(&self.store, topic))
    }

    fn commit(
        &mut self,
        events: &[Event],
        dead: &[DeadRow],
        positions: &[(String, Position)],
    ) -> Result<(), HandoverError> {
        use rdkafka::producer::FutureRecord;
        let lines: Vec<(String, &str)> = events
            .iter()
            .map(|e| (e.to_json(), e.center_id.as_str()))
            .collect();
        let now = now();
        let slot = self.slot;
        let result = self.rt.block_on(async {
            // Every record is enqueued first (librdkafka batches them), then every
            // acknowledgement awaited: the position moves only once all are acknowledged.
            let mut acks = Vec::with_capacity(lines.len());
            for (line, center) in &lines {
                let record = FutureRecord::to(&self.topic)
                    .key(center.as_bytes())
                    .payload(line.as_bytes());
                let ack = cluster::writer::enqueue(&self.producer, record)
                    .await
                    .map_err(|e| HandoverError(format!("events topic: {e}")))?;
                acks.push(ack);
            }
            for ack in acks {
                match ack.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(HandoverError(format!("events topic: {e}"))),
                    Err(_) => return Err(HandoverError("events topic: producer closed".into())),
                }
            }
            let batch = RowBatch {
                dead: dead.iter().map(|d| dead_row(d, now)).collect(),
                ..RowBatch::default()
            };
            let fail = |e: store::StoreError| HandoverError(format!("ClickHouse: {e}"));
            if batch.rows() > 0 {
                self.store.write(&batch).await.map_err(fail)?;
            }
            for (topic, p) in positions {
                let bytes = serde_json::to_vec(p).unwrap_or_default();
                self.store
                    .save_checkpoint(key(topic), slot, taken(p), &bytes)
                    .await
                    .map_err(fail)?;
            }
            Ok(())
        });
        if result.is_ok() {
            self.slot ^= 1;
        }
        result
    }
}

/// Serve `/metrics` of `registry` on `addr` (for `jiancha poll`, which has no API): a thread
/// answering every request with the text exposition.
pub fn serve_metrics(
    addr: std::net::SocketAddr,
    registry: prometheus::Registry,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(addr)?;
    std::thread::Builder::new()
        .name("frontdb-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let mut body = Vec::new();
                let _ = prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut body);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        })?;
    Ok(())
}

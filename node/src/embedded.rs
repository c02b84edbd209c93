//! Embedded mode: one process, one SQLite file, no external services (SPEC §2).
//!
//! ```text
//! POST /api/v1/events ─ decode ─▶ ingest_log (SQLite, group commit + fsync) ─ 200 ─▶ publisher
//!                                      │ seq order
//!                         engine thread ┴▶ Engine ─▶ step's rows ┐ (bounded queue, in order)
//!                         every 30 s: snapshot + next seq ───────┤
//!                                                                ▼
//!                         writer thread: alerts, events, facts, windows (SQLite) ─▶ Hub ─▶ WS
//!                                        then checkpoints (SQLite)
//! ```
//! The ingest log plays Kafka's part: an event is acknowledged once it is in the log (requests
//! arriving together share one commit, see [`SqliteStore::append_events`]), and the engine
//! reads the log in order. The engine thread only applies: its outputs and snapshots go, in
//! order, through a bounded queue to the writer thread, which stores each step's rows (several
//! queued steps in one transaction), then shows them on the dashboards, then stores a snapshot
//! queued behind them. So the hub shows only what is stored, and a checkpoint is stored only
//! after the outputs of every entry it covers. A restart restores the newest checkpoint and
//! re-reads the log after it; re-derived outputs are identical and collapse by key. So a crash
//! loses nothing and counts nothing twice, exactly as in cluster mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use dashboard_api::auth::{TokenKey, Users};
use dashboard_api::backend::{BackendError, BoxFuture};
use dashboard_api::events::{Accepted, EventSink, Refused};
use dashboard_api::hub::Input;
use dashboard_api::{Api, ApiConfig};
use ingest::decode::{decode, DecodeOptions, Receipt};
use prometheus::{IntCounter, IntGauge};
use rules::{Alert, Engine, Outcome, Policy, Reference};
use store::rows::{AlertRow, CaseFactRow, DeadLetterRow, EventRow};
use store::sqlite::{LogEntry, SqliteStore};
use store::{CheckpointKey, RowBatch, Store, StoreError};
use tokio::sync::Notify;

use crate::checkpoint::{self, Restored};
use crate::glue;
use crate::metrics::Metrics;

/// The checkpoint key of the embedded engine.
const KEY: CheckpointKey<'static> = CheckpointKey {
    group_id: "embedded",
    topic: "ingest_log",
    partition: 0,
};

/// How the engine's clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// With the wall clock less `lateness` once the log is read to its end (production: a
    /// deadline fires on time even when no event arrives).
    Wall {
        /// How late an event may arrive and still be judged before time moves past it.
        lateness: Duration,
    },
    /// Only with event time (replays, simulations, the demo).
    Event,
}

/// Settings of an embedded process.
#[derive(Clone)]
pub struct EmbeddedConfig {
    /// Data directory: `jiancha.db` lives here.
    pub data_dir: PathBuf,
    /// Reference data.
    pub reference: Arc<Reference>,
    /// Policy.
    pub policy: Policy,
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Engine clock.
    pub clock: Clock,
    /// Users file (re-read when it changes), and its users as checked at start-up.
    pub users_path: PathBuf,
    /// The users.
    pub users: Users,
    /// Token signing key.
    pub key: TokenKey,
    /// API tunables.
    pub api: ApiConfig,
    /// Finished alerts fired within this many days are loaded at start-up.
    pub keep_days: u32,
    /// Engine state is checkpointed this often (when it changed).
    pub checkpoint_interval: Duration,
    /// Log entries read and written per step.
    pub batch: usize,
    /// Send notifications (`None`: none are sent).
    pub notify: Option<notify::config::NotifySettings>,
    /// The source systems of `sources.csv`, named on the source-health page.
    pub sources: Vec<dashboard_api::SourceEntry>,
    /// The code tables and `sources.csv` the format endpoints (`/api/v1/ingest/…`) map
    /// records with.
    pub formats: dashboard_api::formats::FormatSettings,
}

impl EmbeddedConfig {
    /// Settings with the defaults a county hall starts from.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data_dir: PathBuf,
        reference: Arc<Reference>,
        policy: Policy,
        listen: SocketAddr,
        users_path: PathBuf,
        users: Users,
        key: TokenKey,
    ) -> Self {
        let api = ApiConfig {
            future_skew_secs: i64::from(policy.future_skew_minutes) * 60,
            policy: policy.clone(),
            ..ApiConfig::default()
        };
        EmbeddedConfig {
            data_dir,
            reference,
            policy,
            listen,
            clock: Clock::Wall {
                lateness: Duration::from_secs(300),
            },
            users_path,
            users,
            key,
            api,
            keep_days: 7,
            checkpoint_interval: Duration::from_secs(30),
            batch: 5000,
            notify: None,
            sources: Vec::new(),
            formats: Default::default(),
        }
    }
}

/// Why the embedded process could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The data directory or database cannot be used.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Filesystem or socket problem.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// No stored checkpoint can be restored.
    #[error("{0}")]
    Checkpoint(String),
    /// The process could not set itself up (a task or a metric).
    #[error("start-up: {0}")]
    StartUp(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let what = what.into();
    move |source| EmbeddedError::Io { what, source }
}

/// The ingest log as the API's event sink.
struct LogSink {
    store: SqliteStore,
    /// Requests that reached the log (their commits: [`SqliteStore::log_commits`]).
    requests: Arc<AtomicU64>,
}

impl EventSink for LogSink {
    fn submit(
        &self,
        accepted: Vec<Accepted>,
        refused: Vec<Refused>,
    ) -> BoxFuture<'_, Result<Vec<usize>, BackendError>> {
        Box::pin(async move {
            let entries = accepted
                .into_iter()
                .map(|a| {
                    let entry = LogEntry {
                        received_at: a.received_at,
                        source: a.source,
                        payload: a.raw,
                    };
                    (entry, a.identity)
                })
                .collect();
            let dead = refused.iter().map(glue::dead_letter_row).collect();
            self.requests.fetch_add(1, Ordering::Relaxed);
            // The commit wakes the engine itself (`SqliteStore::log_appended`).
            let seqs = self
                .store
                .append_events(entries, dead)
                .await
                .map_err(|e| glue::backend_error("SQLite", e))?;
            Ok(seqs
                .iter()
                .enumerate()
                .filter_map(|(i, seq)| seq.is_none().then_some(i))
                .collect())
        })
    }
}

/// A running embedded process.
pub struct Embedded {
    /// The API (for tests and the demo).
    pub api: Api,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The store.
    pub store: SqliteStore,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    engine: Option<std::thread::JoinHandle<()>>,
    metrics: EngineMetrics,
    /// Ingest requests that reached the log.
    requests: Arc<AtomicU64>,
}

impl Embedded {
    /// Ask the engine to stop (it checkpoints first) and wait for it.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if let Some(h) = self.engine.take() {
            let _ = h.join();
        }
        // How well the group commit grouped (docs/BENCHMARKS.md).
        log::info!(
            "ingest log: {} requests committed in {} transactions",
            self.requests.load(Ordering::Relaxed),
            self.store.log_commits()
        );
    }

    /// The registry `/metrics` serves (transports running beside the engine, such as the
    /// front-database pollers, register theirs here).
    pub fn registry(&self) -> &prometheus::Registry {
        self.metrics.shared.registry()
    }

    /// Sequence number of the last log entry applied whose outputs are stored and shown
    /// (entries restored from the checkpoint count).
    pub fn applied(&self) -> i64 {
        self.metrics.applied_seq.get()
    }
}

/// The engine's metrics: the vocabulary both modes share ([`crate::metrics`]), as partition
/// `0` and sink `sqlite`, plus the ingest log's own progress.
#[derive(Clone)]
struct EngineMetrics {
    shared: Metrics,
    /// `jiancha_embedded_events_total`: log entries applied.
    entries: IntCounter,
    /// `jiancha_embedded_applied_seq`: sequence number of the last entry applied whose outputs
    /// are stored.
    applied_seq: IntGauge,
}

/// The ingest log is the embedded mode's one partition.
const PARTITION: i32 = 0;
const PARTITION_LABEL: &str = "0";
/// The embedded mode's one sink, and its checkpoints (named as in cluster mode).
const SINK: &str = "sqlite";
const CHECKPOINT_SINK: &str = "checkpoint";

/// The `kind` label of a failed write: retried away, or refused (retrying will not help).
fn failure_kind(e: &StoreError) -> &'static str {
    if e.is_transient() {
        "transient"
    } else {
        "refused"
    }
}

impl EngineMetrics {
    fn new() -> prometheus::Result<EngineMetrics> {
        let shared = Metrics::new();
        shared.zero(&[SINK, CHECKPOINT_SINK]);
        shared.partitions.set(1);
        shared.checkpoint_pending.clean(PARTITION);
        let entries = IntCounter::new(
            "jiancha_embedded_events_total",
            "Ingest log entries applied by the engine",
        )?;
        let applied_seq = IntGauge::new(
            "jiancha_embedded_applied_seq",
            "Sequence number of the last ingest log entry applied, its outputs stored",
        )?;
        shared.registry().register(Box::new(entries.clone()))?;
        shared.registry().register(Box::new(applied_seq.clone()))?;
        Ok(EngineMetrics {
            shared,
            entries,
            applied_seq,
        })
    }
}

/// Open the data directory, restore the engine, serve the API and start the engine thread.
/// Must be called inside `runtime` (its handle drives the engine thread's store calls).
pub async fn start(cfg: EmbeddedConfig) -> Result<Embedded, EmbeddedError> {
    let began = WallInstant::now();
    std::fs::create_dir_all(&cfg.data_dir).map_err(io(format!(
        "creating the data directory {}",
        cfg.data_dir.display()
    )))?;
    let path = cfg.data_dir.join("jiancha.db");
    let store = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .map_err(|e| EmbeddedError::StartUp(e.to_string()))??
    };
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        log::info!("{}: schema migrations {applied:?} applied", path.display());
    }
    store.self_test().await?;
    let (engine, next, slot) = restore(&store, &cfg).await?;

    let metrics =
        EngineMetrics::new().map_err(|e| EmbeddedError::StartUp(format!("metrics: {e}")))?;
    let registry = metrics.shared.registry().clone();
    // Notifications: sent by this process, recorded in its database (docs/NOTIFICATIONS.md).
    let notifier = match &cfg.notify {
        Some(settings) => {
            let (notifier, _done) = crate::notifier::Notifier::start(
                settings.clone(),
                notify::Names::from_reference(&cfg.reference),
                store.clone(),
                &registry,
            );
            Some((notifier, settings.max_age_hours))
        }
        None => None,
    };
    let backend = Arc::new(glue::StoreBackend::new(store.clone(), "SQLite"));
    let api = Api::new(
        cfg.api.clone(),
        cfg.users.clone(),
        cfg.key.clone(),
        backend,
        registry,
    );
    api.set_directory(
        dashboard_api::Directory::from_reference(&cfg.reference)
            .with_sources(cfg.sources.clone())
            .with_formats(cfg.formats.clone()),
    );
    // Every commit to the ingest log wakes the engine from the committing thread (one thread
    // hop fewer on an alert's path than waking it from the answered request), and so does
    // `shutdown`.
    let wake = store.log_appended();
    let requests = Arc::new(AtomicU64::new(0));
    api.set_event_sink(Arc::new(LogSink {
        store: store.clone(),
        requests: requests.clone(),
    }));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(io(format!("listening on {}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(io("reading the listening address"))?;
    api.set_users_file(cfg.users_path.clone());
    let served = api.clone();
    tokio::spawn(async move {
        if let Err(e) = dashboard_api::serve(listener, served).await {
            log::error!("API endpoint stopped: {e}");
        }
    });
    tokio::spawn(api.clone().run_timers());
    tokio::spawn(glue::watch_users(api.clone(), cfg.users_path.clone()));

    // The engine starts consuming before the dashboards' state is loaded: with a million open
    // cases there can be millions of live alerts to load (minutes), and the hub merges the
    // two in any order (a stored alert never undoes a newer retraction, nor a window status a
    // newer one). The notifier's catch-up de-duplicates against what the engine offers.
    let stop = Arc::new(AtomicBool::new(false));
    let (outputs, queue) = std::sync::mpsc::sync_channel(OUTPUT_QUEUE);
    let writer = Writer {
        store: store.clone(),
        rt: tokio::runtime::Handle::current(),
        api: api.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
        notifier: notifier.as_ref().map(|(n, _)| n.clone()),
        abandoned: false,
    };
    let writer = std::thread::Builder::new()
        .name("jiancha-writer".into())
        .spawn(move || writer.run(queue))
        .map_err(io("starting the output writer thread"))?;
    let mut run = Loop {
        cfg: cfg.clone(),
        store: store.clone(),
        rt: tokio::runtime::Handle::current(),
        engine,
        next,
        slot,
        dirty: false,
        outputs: Some(outputs),
        writer: Some(writer),
        wake: wake.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
        last_checkpoint: WallInstant::now(),
        kinds: vec![0; rules::Kind::ALL.len()],
        began: Some(began),
    };
    metrics.applied_seq.set(next - 1);
    let engine = std::thread::Builder::new()
        .name("jiancha-engine".into())
        .spawn(move || run.run())
        .map_err(io("starting the engine thread"))?;
    if let Some((notifier, max_age_hours)) = &notifier {
        crate::notifier::catch_up(notifier, &store, *max_age_hours).await;
    }
    glue::load(&api, &store, i64::from(cfg.keep_days) * 86_400, "SQLite").await;
    if let Some((notifier, _)) = &notifier {
        tokio::spawn(crate::notifier::follow_hub(
            notifier.clone(),
            api.hub().clone(),
        ));
    }
    api.hub().set_ready();
    log::info!(
        "embedded: {} ready on http://{addr}, engine at log entry {}",
        path.display(),
        next - 1
    );
    Ok(Embedded {
        api,
        addr,
        store,
        stop,
        wake,
        engine: Some(engine),
        metrics,
        requests,
    })
}

/// The newest checkpoint that restores, or a new engine when there is none: (engine, next log
/// sequence number to apply, slot of the next checkpoint).
async fn restore(
    store: &SqliteStore,
    cfg: &EmbeddedConfig,
) -> Result<(Engine, i64, u8), EmbeddedError> {
    let metas = store.checkpoints(KEY).await?;
    let read = async |meta: &store::CheckpointMeta| store.checkpoint_data(KEY, meta).await;
    let (restored, problems) =
        checkpoint::restore_newest(metas, read, &cfg.reference, &cfg.policy, "entry").await?;
    if let Some(Restored {
        meta,
        mut engine,
        timing,
    }) = restored
    {
        log::info!(
            "engine state restored at log entry {} ({timing})",
            meta.next_offset - 1
        );
        engine.collect_facts(true);
        engine.collect_window_status(true);
        return Ok((engine, meta.next_offset, meta.slot ^ 1));
    }
    if !problems.is_empty() {
        return Err(EmbeddedError::Checkpoint(format!(
            "no stored engine checkpoint can be restored ({}); refusing to start from nothing. \
             To rebuild the state from the whole ingest log, delete the checkpoints \
             (sqlite3 {}/jiancha.db 'DELETE FROM checkpoints') and start again",
            problems.join("; "),
            cfg.data_dir.display()
        )));
    }
    let mut engine = Engine::new(cfg.reference.clone(), cfg.policy.clone());
    engine.collect_facts(true);
    engine.collect_window_status(true);
    Ok((engine, 1, 0))
}

/// The engine thread.
struct Loop {
    cfg: EmbeddedConfig,
    store: SqliteStore,
    rt: tokio::runtime::Handle,
    engine: Engine,
    /// Sequence number of the next log entry to apply.
    next: i64,
    slot: u8,
    dirty: bool,
    /// To the writer thread (`None` once stopped).
    outputs: Option<SyncSender<Output>>,
    writer: Option<std::thread::JoinHandle<()>>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    metrics: EngineMetrics,
    last_checkpoint: WallInstant,
    /// Events per kind (by `Kind::index`) since the last step, added to the metric once per
    /// step: the per-event cost is an array increment, not a label lookup.
    kinds: Vec<u64>,
    /// When [`start`] began, until the first log entry after it is applied (logged: how long a
    /// restart kept the engine from consuming).
    began: Option<WallInstant>,
}

impl Loop {
    fn run(&mut self) {
        let skew = i64::from(self.cfg.policy.future_skew_minutes) * 60;
        loop {
            if self.stop.load(Ordering::SeqCst) || self.outputs.is_none() {
                self.checkpoint();
                // The writer stores what is queued (the checkpoint last) and stops.
                self.outputs = None;
                if let Some(writer) = self.writer.take() {
                    let _ = writer.join();
                }
                return;
            }
            let entries = match self.store.read_log_blocking(self.next - 1, self.cfg.batch) {
                Ok(e) => e,
                Err(e) => {
                    log::error!("reading the ingest log: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let caught_up = entries.len() < self.cfg.batch;
            let mut alerts: Vec<Alert> = Vec::new();
            let mut batch = RowBatch::default();
            for (seq, entry) in &entries {
                self.apply(*seq, entry, skew, &mut alerts, &mut batch);
            }
            if caught_up {
                if let Clock::Wall { lateness } = self.cfg.clock {
                    let now = dashboard_api::wall_now().plus_secs(-(lateness.as_secs() as i64));
                    if self.engine.clock() < now {
                        let before = alerts.len();
                        self.engine.advance_to(now, &mut alerts);
                        if alerts.len() > before {
                            self.changed();
                        }
                    }
                }
            }
            self.flush(alerts, batch, &entries);
            if let Some((_, _)) = entries.last() {
                if let Some(began) = self.began.take() {
                    log::info!(
                        "engine: consuming from log entry {}, {:.2} s after start-up began",
                        entries[0].0,
                        began.elapsed().as_secs_f64()
                    );
                }
            }
            let shared = &self.metrics.shared;
            for (kind, n) in rules::Kind::ALL.iter().zip(&mut self.kinds) {
                if *n > 0 {
                    shared
                        .events
                        .with_label_values(&[kind.as_str()])
                        .inc_by(std::mem::take(n));
                }
            }
            shared
                .open_cases
                .with_label_values(&[PARTITION_LABEL])
                .set(self.engine.tracked_cases() as i64);
            if self.dirty && self.last_checkpoint.elapsed() >= self.cfg.checkpoint_interval {
                self.checkpoint();
            }
            // Behind as well as caught up: the lag is what an operator watches while behind.
            if let Ok(end) = self.store.log_end_blocking() {
                self.metrics
                    .shared
                    .lag
                    .with_label_values(&[PARTITION_LABEL])
                    .set((end - (self.next - 1)).max(0));
            }
            if caught_up {
                let wake = self.wake.clone();
                let _ = self.rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(500), wake.notified()).await
                });
            }
        }
    }

    /// Apply one log entry. It was decoded at ingest already, so a decode failure here means
    /// a policy change (the skew) or a newer decoder: it becomes a dead letter like any other.
    fn apply(
        &mut self,
        seq: i64,
        entry: &LogEntry,
        skew: i64,
        alerts: &mut Vec<Alert>,
        batch: &mut RowBatch,
    ) {
        self.next = seq + 1;
        self.changed();
        // The publisher that posted it (`http:<publisher>`) names the namespace of its event id
        // when the event names no source (docs/RULES.md); entries logged before that was
        // recorded say just "http".
        let opts = DecodeOptions {
            receipt: Receipt::At(rules::Instant(entry.received_at)),
            default_source: Some(entry.source.as_str()).filter(|s| s.starts_with("http:")),
            max_future_skew_secs: skew,
        };
        let dead = |reason: &str, field: &str, message: String| DeadLetterRow {
            received_at: store::rows::seconds(rules::Instant(entry.received_at)),
            source: format!("log:{seq}"),
            reason: reason.to_string(),
            field: field.to_string(),
            message,
            raw: String::from_utf8_lossy(&entry.payload).into_owned(),
        };
        let m = &self.metrics.shared;
        match decode(&entry.payload, &opts) {
            Err(e) => {
                m.decode_failures
                    .with_label_values(&[e.code.as_str()])
                    .inc();
                batch
                    .dead
                    .push(dead(e.code.as_str(), e.field.unwrap_or(""), e.message))
            }
            Ok(ev) => {
                self.kinds[ev.body.kind().index()] += 1;
                match self.engine.on_event(&ev, alerts) {
                    Ok(Outcome::Duplicate) => m.duplicates.inc(),
                    Ok(_) => batch.events.push(EventRow::logged(
                        &ev,
                        &entry.payload,
                        rules::Instant(entry.received_at),
                        seq,
                    )),
                    Err(rejection) => {
                        m.refused.with_label_values(&[rejection.code()]).inc();
                        batch.dead.push(dead(
                            rejection.code(),
                            rejection.field(),
                            rejection.to_string(),
                        ))
                    }
                }
            }
        }
    }

    /// The state changed: it waits for a checkpoint from now (unless it already did).
    fn changed(&mut self) {
        if !self.dirty {
            self.dirty = true;
            self.metrics.shared.checkpoint_pending.changed(PARTITION);
        }
    }

    /// Hand the step's outputs to the writer thread (waiting while its queue is full), which
    /// makes them durable and then shows them.
    fn flush(&mut self, alerts: Vec<Alert>, mut batch: RowBatch, entries: &[(i64, LogEntry)]) {
        batch.alerts = alerts.iter().map(AlertRow::from).collect();
        batch.facts = self
            .engine
            .drain_facts()
            .iter()
            .map(CaseFactRow::from)
            .collect();
        batch.activity = self
            .engine
            .drain_activities()
            .iter()
            .map(glue::activity_row)
            .collect();
        let windows = self.engine.drain_window_status();
        batch.windows = windows.iter().map(glue::window_row).collect();
        if batch.rows() == 0 && entries.is_empty() {
            return;
        }
        self.send(Output::Step {
            batch,
            through: entries.last().map(|(seq, _)| *seq),
            entries: entries.len() as u64,
        });
    }

    /// Queue `output` for the writer thread. If that thread is gone (it panicked), nothing after
    /// this is stored: the engine stops, and a restart re-derives from the last checkpoint.
    fn send(&mut self, output: Output) {
        if let Some(queue) = &self.outputs {
            if queue.send(output).is_err() {
                log::error!("the output writer stopped; the engine stops too (restart to resume from the last checkpoint)");
                self.outputs = None;
            }
        }
    }

    /// Store the engine state with the log position it covers (after its outputs).
    fn checkpoint(&mut self) {
        if !self.dirty {
            return;
        }
        let bytes = match self.engine.snapshot() {
            Ok(b) => b,
            Err(e) => {
                log::error!("engine snapshot failed: {e}");
                return;
            }
        };
        log::debug!(
            "checkpoint at log entry {} ({} bytes) queued for the writer",
            self.next - 1,
            bytes.len()
        );
        self.metrics
            .shared
            .checkpoint_pending
            .snapshotted(PARTITION);
        self.send(Output::Checkpoint {
            slot: self.slot,
            next: self.next,
            bytes,
        });
        self.slot ^= 1;
        self.dirty = false;
        self.last_checkpoint = WallInstant::now();
    }
}

/// Steps (and snapshots) the engine may run ahead of the writer before it waits.
const OUTPUT_QUEUE: usize = 4;

/// What the engine thread hands the writer thread, in log order.
enum Output {
    /// One step's rows, and the log entries they come from.
    Step {
        batch: RowBatch,
        /// The last entry of the step (none when only the wall clock moved).
        through: Option<i64>,
        entries: u64,
    },
    /// A snapshot of the engine after every entry before `next`: the outputs of those entries
    /// are queued ahead of it.
    Checkpoint { slot: u8, next: i64, bytes: Vec<u8> },
}

/// The writer thread: stores the engine's outputs in order, shows them once stored, and stores
/// each snapshot after everything queued before it.
struct Writer {
    store: SqliteStore,
    rt: tokio::runtime::Handle,
    api: Api,
    stop: Arc<AtomicBool>,
    metrics: EngineMetrics,
    /// Where stored alerts are offered for notification, if enabled.
    notifier: Option<crate::notifier::Notifier>,
    /// A write was given up while stopping: nothing queued after it may be stored (a
    /// checkpoint would cover outputs that are not).
    abandoned: bool,
}

impl Writer {
    fn run(mut self, queue: Receiver<Output>) {
        let mut held = None;
        loop {
            let Some(first) = held.take().or_else(|| queue.recv().ok()) else {
                return;
            };
            match first {
                Output::Checkpoint { slot, next, bytes } => self.checkpoint(slot, next, &bytes),
                Output::Step {
                    mut batch,
                    mut through,
                    mut entries,
                } => {
                    // The steps queued behind it join its transaction, up to a snapshot.
                    while let Ok(more) = queue.try_recv() {
                        match more {
                            Output::Step {
                                batch: b,
                                through: t,
                                entries: n,
                            } => {
                                append(&mut batch, b);
                                through = t.or(through);
                                entries += n;
                            }
                            checkpoint => {
                                held = Some(checkpoint);
                                break;
                            }
                        }
                    }
                    self.step(batch, through, entries);
                }
            }
        }
    }

    /// Retry `op` for as long as it takes (the log keeps the input, so nothing is lost
    /// meanwhile), unless stopping: then give up, and give up everything queued after it.
    fn retrying(
        &mut self,
        sink: &str,
        what: &str,
        mut op: impl FnMut() -> Result<(), StoreError>,
    ) -> bool {
        if self.abandoned {
            return false;
        }
        let mut delay = Duration::from_millis(100);
        while let Err(e) = op() {
            self.metrics
                .shared
                .write_failures
                .with_label_values(&[sink, failure_kind(&e)])
                .inc();
            log::error!(
                "storing {what} in {}: {e}; retrying in {delay:?} (events stay in the ingest log)",
                self.store.path().display()
            );
            if self.stop.load(Ordering::SeqCst) {
                // Stopping without storing: no later output nor checkpoint is stored either,
                // so the next start re-derives these outputs from the log.
                self.abandoned = true;
                return false;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        true
    }

    /// Make one or more steps' outputs durable, then show them.
    fn step(&mut self, batch: RowBatch, through: Option<i64>, entries: u64) {
        let shared = self.metrics.shared.clone();
        if batch.rows() > 0 {
            shared.batch_rows.observe(batch.rows() as f64);
            let started = WallInstant::now();
            let store = self.store.clone();
            if !self.retrying(SINK, "engine output", || store.write_blocking(&batch)) {
                return;
            }
            shared
                .write_seconds
                .with_label_values(&[SINK])
                .observe(started.elapsed().as_secs_f64());
        } else if self.abandoned {
            return;
        }
        for row in &batch.alerts {
            shared
                .alerts
                .with_label_values(&[row.rule.as_str(), row.level.as_str(), row.status.as_str()])
                .inc();
        }
        for row in batch.alerts {
            if let Some(doc) = glue::alert_of(row) {
                if let Some(n) = &self.notifier {
                    n.offer(&doc, 0);
                }
                self.api.apply(Input::Alert(doc));
            }
        }
        for w in batch.windows.iter().filter_map(glue::window_of) {
            self.api.apply(Input::Window(w));
        }
        if let Some(seq) = through {
            self.metrics.applied_seq.set(seq);
        }
        self.metrics.entries.inc_by(entries);
    }

    /// Store the engine state with the log position it covers (its outputs are stored).
    fn checkpoint(&mut self, slot: u8, next: i64, bytes: &[u8]) {
        let (store, rt) = (self.store.clone(), self.rt.clone());
        if !self.retrying(CHECKPOINT_SINK, "the engine checkpoint", || {
            rt.block_on(store.save_checkpoint(KEY, slot, next, bytes))
        }) {
            return;
        }
        log::debug!(
            "checkpoint at log entry {} ({} bytes)",
            next - 1,
            bytes.len()
        );
        let shared = &self.metrics.shared;
        shared.checkpoint_pending.stored(PARTITION);
        shared
            .checkpoint_bytes
            .with_label_values(&[PARTITION_LABEL])
            .set(bytes.len() as i64);
    }
}

/// Add `more`'s rows after `batch`'s, table by table (a later version of a key stays later).
fn append(batch: &mut RowBatch, mut more: RowBatch) {
    batch.events.append(&mut more.events);
    batch.alerts.append(&mut more.alerts);
    batch.dead.append(&mut more.dead);
    batch.facts.append(&mut more.facts);
    batch.windows.append(&mut more.windows);
    batch.activity.append(&mut more.activity);
}

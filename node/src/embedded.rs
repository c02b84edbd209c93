//! Embedded mode: one process, one SQLite file, no external services (SPEC §2).
//!
//! ```text
//! POST /api/v1/events ─ decode ─▶ ingest_log (SQLite, fsync) ─ 200 ─▶ publisher
//!                                      │ seq order
//!                         engine thread ┴▶ Engine ─▶ alerts, events, facts, windows (SQLite)
//!                                                  └▶ Hub ─▶ WebSocket / REST
//!                         every 30 s: snapshot + next seq ─▶ checkpoints (SQLite)
//! ```
//! The ingest log plays Kafka's part: an event is acknowledged once it is in the log, and the
//! engine reads the log in order. Outputs are written before the checkpoint that covers them,
//! and a restart restores the newest checkpoint and re-reads the log after it; re-derived
//! outputs are identical and collapse by key. So a crash loses nothing and counts nothing
//! twice, exactly as in cluster mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use dashboard_api::auth::{TokenKey, Users};
use dashboard_api::backend::{BackendError, BoxFuture};
use dashboard_api::events::{Accepted, EventSink, Refused};
use dashboard_api::hub::Input;
use dashboard_api::{Api, ApiConfig};
use ingest::decode::{decode, DecodeOptions, Receipt};
use prometheus::{IntCounter, IntGauge, Registry};
use rules::{Alert, Engine, Outcome, Policy, Reference};
use store::rows::{AlertRow, CaseFactRow, DeadLetterRow, EventRow};
use store::sqlite::{LogEntry, SqliteStore};
use store::{CheckpointKey, RowBatch, Store, StoreError};
use tokio::sync::Notify;

use crate::checkpoint::{self, Restored};
use crate::glue;

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
    wake: Arc<Notify>,
}

impl EventSink for LogSink {
    fn submit(
        &self,
        accepted: Vec<Accepted>,
        refused: Vec<Refused>,
    ) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            let entries = accepted
                .into_iter()
                .map(|a| LogEntry {
                    received_at: a.received_at,
                    source: "http".into(),
                    payload: a.raw,
                })
                .collect();
            let dead = refused.iter().map(glue::dead_letter_row).collect();
            self.store
                .append_log_with_dead(entries, dead)
                .await
                .map_err(|e| glue::backend_error("SQLite", e))?;
            self.wake.notify_one();
            Ok(())
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
}

impl Embedded {
    /// Ask the engine to stop (it checkpoints first) and wait for it.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        if let Some(h) = self.engine.take() {
            let _ = h.join();
        }
    }

    /// Log entries applied so far (including those restored from the checkpoint).
    pub fn applied(&self) -> i64 {
        self.metrics.applied_seq.get()
    }
}

#[derive(Clone)]
struct EngineMetrics {
    events: IntCounter,
    applied_seq: IntGauge,
    lag: IntGauge,
    open_cases: IntGauge,
    checkpoint_age: IntGauge,
    write_failures: IntCounter,
}

impl EngineMetrics {
    fn new(registry: &Registry) -> prometheus::Result<EngineMetrics> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(EngineMetrics {
            events: counter(
                "jiancha_embedded_events_total",
                "Log entries applied by the engine",
            )?,
            applied_seq: gauge(
                "jiancha_embedded_applied_seq",
                "Sequence number of the last log entry applied",
            )?,
            lag: gauge(
                "jiancha_embedded_lag",
                "Log entries received but not yet applied",
            )?,
            open_cases: gauge("jiancha_open_cases", "Cases the engine tracks")?,
            checkpoint_age: gauge(
                "jiancha_checkpoint_age_seconds",
                "Seconds since the engine state was last stored",
            )?,
            write_failures: counter(
                "jiancha_embedded_write_failures_total",
                "Failed writes of engine output (retried)",
            )?,
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

    let registry = Registry::new();
    let metrics = EngineMetrics::new(&registry)
        .map_err(|e| EmbeddedError::StartUp(format!("metrics: {e}")))?;
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
    api.set_directory(dashboard_api::Directory::from_reference(&cfg.reference));
    let wake = Arc::new(Notify::new());
    api.set_event_sink(Arc::new(LogSink {
        store: store.clone(),
        wake: wake.clone(),
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
    let mut run = Loop {
        cfg: cfg.clone(),
        store: store.clone(),
        rt: tokio::runtime::Handle::current(),
        engine,
        next,
        slot,
        dirty: false,
        api: api.clone(),
        wake: wake.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
        last_checkpoint: WallInstant::now(),
        notifier: notifier.as_ref().map(|(n, _)| n.clone()),
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
    api: Api,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
    metrics: EngineMetrics,
    last_checkpoint: WallInstant,
    /// Where stored alerts are offered for notification, if enabled.
    notifier: Option<crate::notifier::Notifier>,
    /// When [`start`] began, until the first log entry after it is applied (logged: how long a
    /// restart kept the engine from consuming).
    began: Option<WallInstant>,
}

impl Loop {
    fn run(&mut self) {
        let skew = i64::from(self.cfg.policy.future_skew_minutes) * 60;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.checkpoint();
                return;
            }
            let entries = match self
                .rt
                .block_on(self.store.read_log(self.next - 1, self.cfg.batch))
            {
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
                        self.dirty |= alerts.len() > before;
                    }
                }
            }
            self.flush(alerts, batch);
            if let Some((seq, _)) = entries.last() {
                if let Some(began) = self.began.take() {
                    log::info!(
                        "engine: consuming from log entry {}, {:.2} s after start-up began",
                        entries[0].0,
                        began.elapsed().as_secs_f64()
                    );
                }
                self.metrics.applied_seq.set(*seq);
                self.metrics.events.inc_by(entries.len() as u64);
            }
            self.metrics
                .open_cases
                .set(self.engine.tracked_cases() as i64);
            self.metrics
                .checkpoint_age
                .set(self.last_checkpoint.elapsed().as_secs() as i64);
            if self.dirty && self.last_checkpoint.elapsed() >= self.cfg.checkpoint_interval {
                self.checkpoint();
            }
            if caught_up {
                if let Ok(end) = self.rt.block_on(self.store.log_end()) {
                    self.metrics.lag.set((end - (self.next - 1)).max(0));
                }
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
        self.dirty = true;
        let opts = DecodeOptions {
            receipt: Receipt::At(rules::Instant(entry.received_at)),
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
        match decode(&entry.payload, &opts) {
            Err(e) => batch
                .dead
                .push(dead(e.code.as_str(), e.field.unwrap_or(""), e.message)),
            Ok(ev) => match self.engine.on_event(&ev, alerts) {
                Ok(Outcome::Duplicate) => {}
                Ok(_) => batch.events.push(EventRow::new(
                    &ev,
                    &entry.payload,
                    rules::Instant(entry.received_at),
                )),
                Err(rejection) => {
                    batch
                        .dead
                        .push(dead(rejection.code(), "item_code", rejection.to_string()))
                }
            },
        }
    }

    /// Make the outputs durable (retrying for as long as it takes: the log keeps the input,
    /// so nothing is lost meanwhile), then show them on the dashboards.
    fn flush(&mut self, alerts: Vec<Alert>, mut batch: RowBatch) {
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
        if batch.rows() == 0 {
            return;
        }
        let mut delay = Duration::from_millis(100);
        while let Err(e) = self.rt.block_on(self.store.write(&batch)) {
            self.metrics.write_failures.inc();
            log::error!(
                "storing engine output in {}: {e}; retrying in {delay:?} (events stay in the ingest log)",
                self.store.path().display()
            );
            if self.stop.load(Ordering::SeqCst) {
                // Stopping without storing: no checkpoint is written either, so the next
                // start re-derives these outputs from the log.
                self.dirty = false;
                return;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
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
        match self.rt.block_on(
            self.store
                .save_checkpoint(KEY, self.slot, self.next, &bytes),
        ) {
            Ok(()) => {
                log::debug!(
                    "checkpoint at log entry {} ({} bytes)",
                    self.next - 1,
                    bytes.len()
                );
                self.slot ^= 1;
                self.dirty = false;
                self.last_checkpoint = WallInstant::now();
            }
            Err(e) => log::error!("storing the engine checkpoint: {e}; will retry"),
        }
    }
}

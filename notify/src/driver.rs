//! The notifier task: feeds alerts to the [`Dispatcher`], makes its HTTP requests (blocking
//! `ureq` calls on tokio's blocking pool, one at a time per channel), writes delivery records
//! to the [`Ledger`] and only then reports the alerts' tokens as done.
//!
//! Where it runs is the caller's choice (docs/NOTIFICATIONS.md): in cluster mode a consumer of
//! the alerts topic in its own group, committing an offset once its token is done; in embedded
//! mode the engine's output, with a catch-up from the store at start.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::mpsc;

use crate::config::NotifySettings;
use crate::dispatch::{Attempt, Dispatcher, Key, Record};
use crate::notice::Notice;
use crate::payload::{classify, Outcome};
use crate::text::Names;

/// A boxed future (the ledger is used as a trait object).
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// The persisted record of deliveries: what was sent (or held back, or given up) is never sent
/// again, by this process after a restart or by another that takes over its work.
pub trait Ledger: Send + Sync {
    /// Which of `keys` have a record.
    fn seen<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, HashSet<Key>>;
    /// Store records (idempotent: the same record twice is one).
    fn record<'a>(&'a self, records: &'a [Record]) -> LedgerFuture<'a, ()>;
}

/// A ledger in memory (tests; or a process that accepts repeats after a restart).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    records: Mutex<Vec<Record>>,
}

impl MemoryLedger {
    /// Every record written so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Ledger for MemoryLedger {
    fn seen<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, HashSet<Key>> {
        Box::pin(async move {
            let records = self.records.lock().map_err(|e| e.to_string())?;
            Ok(keys
                .iter()
                .filter(|k| records.iter().any(|r| &r.key == *k))
                .cloned()
                .collect())
        })
    }

    fn record<'a>(&'a self, records: &'a [Record]) -> LedgerFuture<'a, ()> {
        Box::pin(async move {
            self.records
                .lock()
                .map_err(|e| e.to_string())?
                .extend_from_slice(records);
            Ok(())
        })
    }
}

/// The notifier's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// `jiancha_notifications_total{channel, outcome}`.
    pub total: IntCounterVec,
    /// `jiancha_notifications_queued`.
    pub queued: IntGauge,
}

impl Metrics {
    /// Register on `registry` (a fresh registry if it is already there, e.g. in tests).
    pub fn new(registry: &Registry) -> Metrics {
        let total = IntCounterVec::new(
            Opts::new(
                "jiancha_notifications_total",
                "Notification messages by channel and outcome (sent, failed, suppressed by the storm limit, retried attempts)",
            ),
            &["channel", "outcome"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let queued = IntGauge::new(
            "jiancha_notifications_queued",
            "Notification messages waiting to be delivered (retrying included)",
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        // A second registration (two notifiers in one test process) is refused; the counters
        // then still count, unexported.
        let _ = registry.register(Box::new(total.clone()));
        let _ = registry.register(Box::new(queued.clone()));
        Metrics { total, queued }
    }

    /// Every (channel, outcome) series at zero, so that the first failure is an increase
    /// Prometheus can see (a series that first appears at 1 has no increase).
    pub fn zero(&self, settings: &NotifySettings) {
        for c in &settings.channels {
            for outcome in crate::dispatch::OUTCOMES {
                self.total.with_label_values(&[&c.name, outcome]).inc_by(0);
            }
        }
    }
}

/// What the notifier is told.
pub enum Input {
    /// A durable alert line to deliver.
    Alert {
        /// The alert line.
        notice: Notice,
        /// Reported on the done channel once every message of it has ended and is recorded.
        token: u64,
    },
    /// An alert that is active (the state at start-up): Alertmanager channels keep sending it
    /// again; nothing else is sent.
    Firing(Notice),
    /// An alert is no longer active since `at` (Unix seconds): resolved or dismissed by an
    /// inspector. Alertmanager channels that have it firing send its end.
    Ended {
        /// The alert.
        alert_id: String,
        /// When it ended.
        at: i64,
    },
}

/// Run until `inputs` closes. Alerts still queued then are not sent by this run; their tokens
/// are never reported done, so the caller's source offers them again (next owner, restart).
pub async fn run(
    settings: NotifySettings,
    names: Names,
    ledger: Arc<dyn Ledger>,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    done: mpsc::UnboundedSender<u64>,
    metrics: Metrics,
) {
    let started = tokio::time::Instant::now();
    let now = move || started.elapsed().as_millis() as u64;
    let timeout = Duration::from_secs(settings.timeout_seconds.max(1));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    metrics.zero(&settings);
    let mut dispatcher = Dispatcher::new(settings, names, now());
    let (results_tx, mut results_rx) = mpsc::unbounded_channel::<(usize, Outcome)>();
    let mut batch: Vec<Input> = Vec::new();
    loop {
        for attempt in dispatcher.due(now(), wall_ms()) {
            let agent = agent.clone();
            let results = results_tx.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = post(&agent, &attempt);
                let _ = results.send((attempt.channel, outcome));
            });
        }
        let (records, tokens) = dispatcher.drain();
        if !records.is_empty() {
            write_records(ledger.as_ref(), &records).await;
        }
        for t in tokens {
            let _ = done.send(t);
        }
        for ((channel, outcome), n) in dispatcher.take_tally() {
            if channel.is_empty() {
                continue; // `stale`: not about a channel
            }
            metrics
                .total
                .with_label_values(&[&channel, outcome])
                .inc_by(n);
        }
        metrics.queued.set(dispatcher.queued() as i64);

        let wake = dispatcher.next_wakeup(now());
        let sleep = async {
            match wake {
                Some(at) => {
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now()))).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            input = inputs.recv() => {
                let Some(first) = input else { return };
                batch.push(first);
                // Take what else is waiting, to ask the ledger once for the lot.
                while batch.len() < 500 {
                    match inputs.try_recv() {
                        Ok(i) => batch.push(i),
                        Err(_) => break,
                    }
                }
                let keys: Vec<Key> = batch
                    .iter()
                    .filter_map(|i| match i {
                        Input::Alert { notice, .. } => Some(dispatcher.targets(notice)),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                let already = seen(ledger.as_ref(), &keys).await;
                for input in batch.drain(..) {
                    match input {
                        Input::Alert { notice, token } => {
                            dispatcher.submit(notice, &already, token, now(), wall_ms())
                        }
                        Input::Firing(notice) => dispatcher.firing(notice),
                        Input::Ended { alert_id, at } => dispatcher.ended(&alert_id, at, now()),
                    }
                }
            }
            Some((channel, outcome)) = results_rx.recv() => {
                dispatcher.finished(channel, outcome, now());
            }
            () = sleep => {}
        }
    }
}

/// Ask the ledger, retrying while it is unreachable (sending without knowing could repeat).
async fn seen(ledger: &dyn Ledger, keys: &[Key]) -> HashSet<Key> {
    if keys.is_empty() {
        return HashSet::new();
    }
    let mut wait = Duration::from_millis(200);
    loop {
        match ledger.seen(keys).await {
            Ok(s) => return s,
            Err(e) => {
                log::warn!("notification ledger unreachable ({e}); retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Write records, retrying while the store is down: a token is reported done only after.
async fn write_records(ledger: &dyn Ledger, records: &[Record]) {
    let mut wait = Duration::from_millis(200);
    while let Err(e) = ledger.record(records).await {
        log::warn!("notification ledger write failed ({e}); retrying in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One HTTP request and what its answer means.
fn post(agent: &ureq::Agent, a: &Attempt) -> Outcome {
    let mut req = agent
        .post(&a.request.url)
        .header("content-type", &a.request.content_type);
    for (k, v) in &a.request.headers {
        req = req.header(k, v);
    }
    match req.send(a.request.body.as_bytes()) {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.into_body().read_to_string().unwrap_or_default();
            classify(a.kind, status, &body)
        }
        Err(e) => Outcome::Retry(format!("{}: {e}", a.channel_name)),
    }
}

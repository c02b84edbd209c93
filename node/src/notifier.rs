//! Notifications in a jiancha process: the [`notify`] driver with its delivery ledger in the
//! process's store (`notifications` table, SQLite or ClickHouse), fed with alerts once they are
//! durable. Embedded mode offers every alert it stores, and at start the stored alerts of the
//! last `max_age_hours` again (the ledger drops what was already handled), so a crash between
//! storing an alert and delivering it loses nothing. Cluster mode feeds it from the alerts
//! topic (`cluster::notifier`).

use std::collections::HashSet;

use dashboard_api::model::AlertDoc;
use notify::driver::{self, Input, LedgerFuture, Metrics};
use notify::{Key, Ledger, Names, Notice, Record};
use prometheus::Registry;
use store::rows::NotificationRow;
use store::Store;
use tokio::sync::mpsc;

/// The ledger in a [`Store`].
pub struct StoreLedger<S>(pub S);

impl<S: Store + Send + Sync> Ledger for StoreLedger<S> {
    fn seen<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, HashSet<Key>> {
        Box::pin(async move {
            let mut ids: Vec<String> = keys.iter().map(|k| k.alert_id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let rows = self
                .0
                .notifications(&ids)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| Key {
                    alert_id: r.alert_id,
                    status: r.status,
                    target: r.target,
                })
                .collect())
        })
    }

    fn record<'a>(&'a self, records: &'a [Record]) -> LedgerFuture<'a, ()> {
        Box::pin(async move {
            let at = u32::try_from(dashboard_api::wall_now().0).unwrap_or(u32::MAX);
            let rows: Vec<NotificationRow> = records
                .iter()
                .map(|r| NotificationRow {
                    alert_id: r.key.alert_id.clone(),
                    status: r.key.status.clone(),
                    target: r.key.target.clone(),
                    level: r.level.clone(),
                    fate: r.fate.as_str().to_string(),
                    detail: r.detail.clone(),
                    at,
                })
                .collect();
            self.0
                .insert_notifications(&rows)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The input of a running notifier.
#[derive(Clone)]
pub struct Notifier {
    input: mpsc::UnboundedSender<Input>,
}

impl Notifier {
    /// Start the driver on the current tokio runtime; the receiver reports tokens whose
    /// deliveries have all ended and are recorded.
    pub fn start<S: Store + Send + Sync + 'static>(
        settings: notify::config::NotifySettings,
        names: Names,
        store: S,
        registry: &Registry,
    ) -> (Notifier, mpsc::UnboundedReceiver<u64>) {
        let (input, inputs) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        tokio::spawn(driver::run(
            settings,
            names,
            std::sync::Arc::new(StoreLedger(store)),
            inputs,
            done_tx,
            Metrics::new(registry),
        ));
        (Notifier { input }, done)
    }

    /// Offer a stored alert.
    pub fn offer(&self, doc: &AlertDoc, token: u64) {
        match serde_json::to_value(doc).and_then(Notice::from_value) {
            Ok(notice) => self.offer_notice(notice, token),
            Err(e) => log::error!("alert {} cannot be notified: {e}", doc.alert_id),
        }
    }

    /// Offer an alert line.
    pub fn offer_notice(&self, notice: Notice, token: u64) {
        // Fails only once the driver has stopped (shutdown): nothing is lost, the alert is in
        // the store and is offered again at the next start.
        let _ = self.input.send(Input::Alert { notice, token });
    }

    /// Tell the notifier which alerts are active (Alertmanager channels keep sending them).
    pub fn firing(&self, notice: Notice) {
        let _ = self.input.send(Input::Firing(notice));
    }

    /// Tell the notifier an alert ended at `at` (Unix seconds): resolved or dismissed.
    pub fn ended(&self, alert_id: String, at: i64) {
        let _ = self.input.send(Input::Ended { alert_id, at });
    }
}

/// Offer again the stored alerts fired in the last `max_age_hours` (embedded start-up).
pub async fn catch_up<S: Store>(notifier: &Notifier, store: &S, max_age_hours: u64) {
    let now = dashboard_api::wall_now().0;
    let since =
        now.saturating_sub(i64::try_from(max_age_hours.saturating_mul(3600)).unwrap_or(i64::MAX));
    let since = u32::try_from(since.max(0)).unwrap_or(0);
    match store.live_alerts(since).await {
        Ok(rows) => {
            let rows: Vec<_> = rows.into_iter().filter(|r| r.fired_at >= since).collect();
            log::info!(
                "notifications: {} stored alerts of the last {max_age_hours} h offered again",
                rows.len()
            );
            for doc in rows.into_iter().filter_map(crate::glue::alert_of) {
                notifier.offer(&doc, 0);
            }
        }
        Err(e) => log::error!("notifications: cannot read stored alerts to catch up: {e}"),
    }
}

/// Keep the notifier's Alertmanager channels in step with the hub's live alerts (embedded
/// mode, and cluster processes that serve the dashboard API): the active alerts at start are
/// firing (so a restart goes on re-sending what was open before it), and an alert an inspector
/// resolves or dismisses, or that is retracted, ends. Runs until the hub is dropped.
pub async fn follow_hub(notifier: Notifier, hub: std::sync::Arc<dashboard_api::hub::Hub>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let (active, mut changes) = hub.active_and_subscribe();
        for view in active {
            if let Some(n) = firing_notice(view) {
                notifier.firing(n);
            }
        }
        loop {
            match changes.recv().await {
                Ok(delta) => {
                    let Ok(mut change) = serde_json::from_str::<serde_json::Value>(&delta.text)
                    else {
                        continue;
                    };
                    let view = change["alert"].take();
                    let at = view["updated_at"]
                        .as_str()
                        .and_then(|t| rules::time::parse_rfc3339(t).ok());
                    match (view["status"].as_str(), at) {
                        (Some("resolved" | "dismissed"), Some(at)) => {
                            if let Some(id) = view["alert_id"].as_str() {
                                notifier.ended(id.to_string(), at.0);
                            }
                        }
                        (Some("open" | "acknowledged" | "supervising"), _) => {
                            if let Some(n) = firing_notice(view) {
                                notifier.firing(n);
                            }
                        }
                        // The alert line reaches the notifier that owns it; this tells the
                        // others, which re-send it too (cluster mode), that it ended.
                        (Some("retracted" | "cleared"), _) => {
                            if let Ok(n) = Notice::from_value(view) {
                                let at = n.end_secs();
                                notifier.ended(n.alert_id, at);
                            }
                        }
                        _ => {} // windows
                    }
                }
                // The feed outran this follower (it only parses JSON, so this takes a burst of
                // tens of thousands of changes): start again from the active alerts. An alert
                // resolved meanwhile stays firing at Alertmanager until the next start.
                Err(RecvError::Lagged(n)) => {
                    log::warn!("notifications: {n} dashboard changes missed; resynchronising");
                    break;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

/// An active alert's hub view as the alert line it came from: the level it fired at (its
/// Alertmanager labels must not change when a 督办 escalates it) and status `open`.
fn firing_notice(mut view: serde_json::Value) -> Option<Notice> {
    view["level"] = view["fired_level"].clone();
    view["status"] = "open".into();
    Notice::from_value(view).ok()
}

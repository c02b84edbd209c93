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
        let _ = self.input.send(Input { notice, token });
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

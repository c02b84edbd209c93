//! What the API needs from a store, whichever mode it runs in.
//!
//! Cluster mode implements it over ClickHouse (and publishes actions on Kafka so other API
//! processes see them); embedded mode over SQLite; tests over memory. The hub itself never
//! waits on a store: the store is asked only to make an action durable before it is applied, and
//! for case timelines.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

use crate::model::Action;

/// A boxed future (the trait is used as `dyn Backend`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store could not answer: the message is shown to the user with a 503.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// The API's store.
pub trait Backend: Send + Sync + 'static {
    /// Make an action durable (and, in cluster mode, visible to the other API processes).
    /// The API applies and broadcasts it only after this returns `Ok`.
    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The events of a case, as received (the raw JSON objects), oldest first.
    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>>;
}

/// An in-memory store, for tests and for trying the API out.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    actions: Mutex<Vec<Action>>,
    events: Mutex<Vec<Value>>,
    failing: Mutex<Option<String>>,
}

impl MemoryBackend {
    /// Remember an event for timelines.
    pub fn add_event(&self, event: Value) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    /// The actions recorded so far.
    pub fn actions(&self) -> Vec<Action> {
        self.actions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Make every call fail with `message` (or succeed again with `None`).
    pub fn fail_with(&self, message: Option<&str>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = message.map(str::to_string);
    }

    fn check(&self) -> Result<(), BackendError> {
        match &*self.failing.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(m) => Err(BackendError(m.clone())),
            None => Ok(()),
        }
    }
}

impl Backend for MemoryBackend {
    fn record_action<'a>(&'a self, action: &'a Action) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.check()?;
            self.actions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(action.clone());
            Ok(())
        })
    }

    fn case_timeline<'a>(
        &'a self,
        case_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            self.check()?;
            let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            let mut out: Vec<Value> = events
                .iter()
                .filter(|e| e.get("case_id").and_then(Value::as_str) == Some(case_id))
                .cloned()
                .collect();
            out.sort_by(|a, b| {
                let t = |v: &Value| {
                    v.get("occurred_at")
                        .and_then(Value::as_str)
                        .and_then(|s| rules::time::parse_rfc3339(s).ok())
                };
                t(a).cmp(&t(b))
            });
            Ok(out)
        })
    }
}

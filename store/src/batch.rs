//! Batching by rows and by time, and retry with backoff for transient failures.
//!
//! [`Batch`] is plain state (time passed in, like the engine): it says when a batch must be
//! written, by size or by age. [`retry`] runs a write, retrying only what
//! [`StoreError::is_transient`] says is worth retrying.

use std::future::Future;
use std::time::Duration;

use crate::StoreError;

/// Rows waiting to be written, flushed at `max_rows` or when the oldest is `max_age` old.
#[derive(Debug, Clone)]
pub struct Batch<T> {
    rows: Vec<T>,
    oldest: Option<Duration>,
    max_rows: usize,
    max_age: Duration,
}

impl<T> Batch<T> {
    /// An empty batch.
    pub fn new(max_rows: usize, max_age: Duration) -> Self {
        Batch {
            rows: Vec::new(),
            oldest: None,
            max_rows: max_rows.max(1),
            max_age,
        }
    }

    /// Add a row at monotonic time `now`; true when the batch is full and should be written.
    pub fn push(&mut self, row: T, now: Duration) -> bool {
        self.oldest.get_or_insert(now);
        self.rows.push(row);
        self.rows.len() >= self.max_rows
    }

    /// True when the oldest row has waited `max_age` by `now`.
    pub fn due(&self, now: Duration) -> bool {
        self.oldest
            .is_some_and(|t| now.saturating_sub(t) >= self.max_age)
    }

    /// When the batch becomes due by age, if it holds anything.
    pub fn deadline(&self) -> Option<Duration> {
        self.oldest.map(|t| t + self.max_age)
    }

    /// Take the rows out (after they were written).
    pub fn take(&mut self) -> Vec<T> {
        self.oldest = None;
        std::mem::take(&mut self.rows)
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Exponential backoff: `first`, doubling up to `max`, for at most `attempts` tries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First pause.
    pub first: Duration,
    /// Longest pause.
    pub max: Duration,
    /// Tries in all (including the first).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(10),
            attempts: 8,
        }
    }
}

/// Run `op`, retrying transient failures with backoff; a refusal is returned at once.
/// Returns the last error when the attempts run out (the caller keeps its data and its Kafka
/// offsets, and tries again later: nothing is dropped).
pub async fn retry<T, F, Fut>(backoff: Backoff, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = backoff.first;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < backoff.attempts => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(backoff.max);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn batches_flush_by_size_and_by_age() {
        let s = Duration::from_secs;
        let mut b = Batch::new(3, s(2));
        assert!(!b.due(s(100)), "empty is never due");
        assert!(!b.push(1, s(10)));
        assert!(!b.push(2, s(11)));
        assert!(!b.due(s(11)));
        assert!(b.due(s(12)), "oldest row waited 2 s");
        assert_eq!(b.deadline(), Some(s(12)));
        assert!(b.push(3, s(11)), "full at 3 rows");
        assert_eq!(b.take(), vec![1, 2, 3]);
        assert!(b.is_empty() && b.deadline().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_transient_failures_with_growing_pauses() {
        let calls = Cell::new(0);
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(250),
            attempts: 4,
        };
        let start = tokio::time::Instant::now();
        let r: Result<(), _> = retry(backoff, || {
            calls.set(calls.get() + 1);
            async { Err(StoreError::Unavailable("down".into())) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 4);
        // 100 + 200 + 250 (capped) ms of pauses between 4 tries.
        assert_eq!(start.elapsed(), Duration::from_millis(550));

        calls.set(0);
        let r: Result<(), _> = retry(backoff, || {
            calls.set(calls.get() + 1);
            async {
                Err(StoreError::Refused {
                    code: Some(27),
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1, "a refusal is not retried");

        calls.set(0);
        let r = retry(backoff, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(StoreError::Unavailable("down".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some(3), "succeeds once the store is back");
    }
}

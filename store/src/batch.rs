//! Retry with backoff for transient failures: [`retry`] runs a write, retrying only what
//! [`StoreError::is_transient`] says is worth retrying. (Batching by rows and by age is the
//! cluster pipeline's: one batch spans every table.)

use std::future::Future;
use std::time::Duration;

use crate::StoreError;

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
/// `on_transient` sees each transient failure and may stop the retries by returning false.
/// Returns the last error when the attempts run out or are stopped (the caller keeps its data
/// and its Kafka offsets, and tries again later: nothing is dropped).
pub async fn retry<T, F, Fut>(
    backoff: Backoff,
    mut op: F,
    mut on_transient: impl FnMut(&StoreError) -> bool,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = backoff.first;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < backoff.attempts && on_transient(&e) => {
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

    #[tokio::test(start_paused = true)]
    async fn retries_only_transient_failures_with_growing_pauses() {
        let calls = Cell::new(0);
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(250),
            attempts: 4,
        };
        let start = tokio::time::Instant::now();
        let r: Result<(), _> = retry(
            backoff,
            || {
                calls.set(calls.get() + 1);
                async { Err(StoreError::Unavailable("down".into())) }
            },
            |_| true,
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 4);
        // 100 + 200 + 250 (capped) ms of pauses between 4 tries.
        assert_eq!(start.elapsed(), Duration::from_millis(550));

        calls.set(0);
        let r: Result<(), _> = retry(
            backoff,
            || {
                calls.set(calls.get() + 1);
                async {
                    Err(StoreError::Refused {
                        code: Some(27),
                        message: "bad".into(),
                    })
                }
            },
            |_| true,
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1, "a refusal is not retried");

        calls.set(0);
        let r = retry(
            backoff,
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(StoreError::Unavailable("down".into()))
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| true,
        )
        .await;
        assert_eq!(r.ok(), Some(3), "succeeds once the store is back");

        calls.set(0);
        let r: Result<(), _> = retry(
            backoff,
            || {
                calls.set(calls.get() + 1);
                async { Err(StoreError::Unavailable("down".into())) }
            },
            |_| calls.get() < 2,
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 2, "the caller stopped the retries");
    }
}

//! jiancha's storage: alerts, raw events, alert actions, dead letters, case facts, activity
//! facts, window status and engine checkpoints.
//!
//! One interface, [`Store`], two backends: ClickHouse for cluster mode
//! ([`clickhouse::ClickHouseStore`]) and one SQLite file for the embedded mode
//! ([`sqlite::SqliteStore`], which also holds the embedded mode's durable ingest log, its
//! "Kafka"). Rows are this crate's own types ([`rows`]), translated from the engine's at the
//! edge: nothing backend-specific leaks out. `store/tests/conformance/` runs the same checks
//! against both backends.
//!
//! Invariants:
//! - Writes are idempotent: every table but the alert actions' audit trail is keyed, and a
//!   re-delivered or replayed row never shows twice (alerts by their deterministic `alert_id`,
//!   the highest `version` winning), so at-least-once delivery is harmless. ClickHouse collapses
//!   duplicates at read time (`FINAL`), SQLite at write time (upserts); reads agree.
//! - The decision "retry or not" is made in one place, [`StoreError::is_transient`]: an outage
//!   (connection refused, timeout, server overloaded) is retried with backoff; data the server
//!   refuses is not, because it would be refused again.

pub mod api;
pub mod batch;
pub mod clickhouse;
mod query;
pub mod rows;
pub mod schema;
pub mod sqlite;

pub use api::{
    AlertFilter, CheckpointKey, CheckpointMeta, DeadLetterQuery, Dimension, HistoryQuery,
    PerfCounts, PerfQuery, RowBatch, SourceFigures, SourceQuery, Store,
};

/// A storage failure, classified for the caller's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is overloaded right now: retry with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the data or the statement, or cannot be used at all (SQLite: disk
    /// full, read-only or unopenable file, corrupt database): retrying would fail the same way.
    #[error("store refused the request{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Refused {
        /// ClickHouse exception code or SQLite extended result code, when known.
        code: Option<u32>,
        /// The server's or SQLite's message (for SQLite, naming the file).
        message: String,
    },
    /// The start-up self-test wrote a row and could not read it back.
    #[error("store self-test failed: {0}")]
    SelfTest(String),
}

impl StoreError {
    /// Should the operation be retried after a pause?
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Seconds since the Unix epoch now, as stored (`written_at`, self-test rows).
pub(crate) fn now_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// A self-test row's token and time: unique per call, even for two calls in the same second of
/// one process (which would otherwise read back each other's rows).
pub(crate) fn self_test_token() -> (String, u32) {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at = now_seconds();
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (format!("self-test-{}-{at}-{n}", std::process::id()), at)
}

/// ClickHouse exception codes that mean "try again later", not "this data is wrong".
/// (TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES, SOCKET_TIMEOUT, NETWORK_ERROR,
/// MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS, UNKNOWN_STATUS_OF_INSERT,
/// ALL_REPLICAS_ARE_STALE, NO_ZOOKEEPER, KEEPER_EXCEPTION.)
const TRANSIENT_CODES: &[u32] = &[159, 202, 209, 210, 241, 242, 252, 319, 369, 225, 999];

/// The `Code: N` of a ClickHouse exception message.
fn exception_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// ClickHouse out of disk: NOT_ENOUGH_SPACE (243, a reservation refused, current releases), or
/// a write failing with `ENOSPC` (18.16: code 75 `errno: 28`), or the server unable to write
/// even its own files (Poco's `Cannot write file`, when its log shares the full disk).
fn disk_full(code: Option<u32>, message: &str) -> bool {
    code == Some(243)
        || message.contains("errno: 28")
        || message.contains("No space left on device")
        || message.contains("Cannot write file")
}

/// Classify a message from the server (or from the client about the server's response). A full
/// disk is an outage, not a refusal: the data is fine and is written once space is back
/// (docs/RELIABILITY.md, "A full disk").
pub(crate) fn classify(message: String) -> StoreError {
    match exception_code(&message) {
        Some(code) if TRANSIENT_CODES.contains(&code) => StoreError::Unavailable(message),
        code if disk_full(code, &message) => {
            StoreError::Unavailable(format!("the disk of ClickHouse is full: {message}"))
        }
        code => StoreError::Refused { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_exceptions_are_classified_by_code() {
        let overloaded = classify(
            "Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries".into(),
        );
        assert!(overloaded.is_transient());
        let bad = classify(
            "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: x"
                .into(),
        );
        assert!(!bad.is_transient());
        assert!(matches!(bad, StoreError::Refused { code: Some(27), .. }));
        let unknown = classify("something odd".into());
        assert!(
            !unknown.is_transient(),
            "unknown errors are not retried blindly"
        );
        assert_eq!(
            exception_code("Code: 60. DB::Exception: Table x doesn't exist"),
            Some(60)
        );
    }

    #[test]
    fn a_full_disk_is_waited_out_not_refused() {
        // As 18.16 and current releases say it (the first two seen on a full tmpfs here).
        for message in [
            "Code: 75, e.displayText() = DB::ErrnoException: Cannot write to file /d/x.bin, \
             errno: 28, strerror: No space left on device, e.what() = DB::ErrnoException",
            "Poco::Exception. Code: 1000, e.code() = 0, e.displayText() = Cannot write file: \
             /d/server.log, e.what() = Cannot write file",
            "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)",
        ] {
            let e = classify(message.into());
            assert!(e.is_transient(), "{e}");
            assert!(e.to_string().contains("the disk of ClickHouse is full"), "{e}");
        }
    }
}

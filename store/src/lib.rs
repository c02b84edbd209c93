//! jiancha's storage: alerts, raw events, alert actions, dead letters and case facts.
//!
//! Cluster mode stores them in ClickHouse ([`clickhouse::ClickHouseStore`]); the embedded mode's
//! SQLite backend will implement the same operations. Rows are this crate's own types, translated
//! from the engine's at the edge: nothing ClickHouse-specific leaks out.
//!
//! Invariants:
//! - Writes are idempotent: alerts are keyed by their deterministic `alert_id` and read so that a
//!   re-delivered or replayed alert never shows twice, so at-least-once delivery is harmless.
//! - The decision "retry or not" is made in one place, [`StoreError::is_transient`]: an outage
//!   (connection refused, timeout, server overloaded) is retried with backoff; data the server
//!   refuses is not, because it would be refused again.

pub mod batch;
pub mod clickhouse;
pub mod rows;
pub mod schema;

/// A storage failure, classified for the caller's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is overloaded right now: retry with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the data or the statement (ClickHouse exception code when known):
    /// retrying would fail the same way.
    #[error("store refused the request{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Refused {
        /// ClickHouse exception code, when the server gave one.
        code: Option<u32>,
        /// The server's message.
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

/// Classify a message from the server (or from the client about the server's response).
pub(crate) fn classify(message: String) -> StoreError {
    match exception_code(&message) {
        Some(code) if TRANSIENT_CODES.contains(&code) => StoreError::Unavailable(message),
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
}

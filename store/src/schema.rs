//! The ClickHouse schema, as numbered migrations.
//!
//! Written for both Debian's ClickHouse 18.16 and current releases: plain `String`/`DateTime`/
//! integer columns (no `LowCardinality`, `Nullable` or JSON types, which 18.16 lacks or gates),
//! `MergeTree`-family engines with the `PARTITION BY`/`ORDER BY` syntax both understand, and
//! `FINAL` to read de-duplicated rows. Every statement is idempotent (`IF NOT EXISTS`), so two
//! processes migrating at once do no harm.

/// One migration: a version, what it does, and its statements (`{db}` is the database).
pub struct Migration {
    /// Increasing version number.
    pub version: u32,
    /// What it does, for the ledger.
    pub description: &'static str,
    /// DDL statements.
    pub statements: &'static [&'static str],
}

/// The ledger of applied migrations (created before any migration runs).
pub const LEDGER: &str = "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
    (version UInt32, description String, applied_at DateTime) \
    ENGINE = MergeTree() ORDER BY version";

/// Used by the start-up self-test: a write must read back (a client/server mismatch, such as
/// LZ4 with ClickHouse 18.16, makes every SELECT silently return no rows).
pub const SELF_TEST: &str = "CREATE TABLE IF NOT EXISTS {db}.self_test \
    (token String, at DateTime, n UInt8) ENGINE = MergeTree() ORDER BY token";

/// All migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, alerts, alert actions, dead letters, case facts",
        statements: &[
            // Raw events as received: history and audits. A re-delivered event (same id and time)
            // collapses.
            "CREATE TABLE IF NOT EXISTS {db}.events (\
            event_id String, kind String, occurred_at DateTime, received_at DateTime, \
            center_id String, region String, case_id String, raw String) \
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(occurred_at) \
         ORDER BY (region, occurred_at, event_id)",
            // Alerts keyed by their deterministic id; a retraction (version 1) replaces the open
            // row (version 0), and re-deliveries collapse. Both versions share fired_at, hence the
            // partition, which ReplacingMergeTree needs to merge them.
            "CREATE TABLE IF NOT EXISTS {db}.alerts (\
            alert_id String, rule String, level String, status String, version UInt8, \
            fired_at DateTime, center_id String, region String, department String, \
            window_id String, staff_id String, case_id String, item_code String, \
            subject String, message String, evidence String) \
         ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(fired_at) ORDER BY alert_id",
            // Inspector actions (acknowledge, 督办, 回告, resolve, dismiss): who, when, why.
            "CREATE TABLE IF NOT EXISTS {db}.alert_actions (\
            alert_id String, action String, actor String, at DateTime, reason String, \
            reply_deadline DateTime, region String) \
         ENGINE = MergeTree() PARTITION BY toYYYYMM(at) ORDER BY (alert_id, at)",
            // Invalid input with its reason. `source` names the message (topic/partition/offset)
            // and `received_at` is its broker timestamp, so a re-delivered dead letter collapses.
            "CREATE TABLE IF NOT EXISTS {db}.dead_letters (\
            received_at DateTime, source String, reason String, field String, \
            message String, raw String) \
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(received_at) \
         ORDER BY (received_at, source)",
            // One row per finished case: the basis of 绩效 metrics. Facts are deterministic, so a
            // re-delivered one is identical and collapses.
            "CREATE TABLE IF NOT EXISTS {db}.case_facts (\
            case_id String, center_id String, region String, department String, \
            window_id String, staff_id String, item_code String, case_type String, \
            channel String, accepted_at DateTime, completed_at DateTime, result String, \
            start Date, deemed UInt8, promised_days UInt16, promised_unit String, \
            legal_days UInt16, legal_unit String, extension_days UInt16, pause_days UInt16, \
            deadline_date Date, deadline DateTime, legal_deadline DateTime, \
            working_days_used UInt16, on_time UInt8, early UInt8, on_site UInt8, \
            within_legal UInt8, version UInt32) \
         ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(completed_at) \
         ORDER BY (region, case_id)",
        ],
    },
    Migration {
        version: 2,
        description: "engine checkpoints per consumer group and partition",
        statements: &[
            // Engine snapshots with the offset they cover, in chunks. Two slots per partition
            // alternate, so a checkpoint being written never replaces the last complete one; within
            // a slot the newer checkpoint (version = next_offset) replaces the older on merge.
            "CREATE TABLE IF NOT EXISTS {db}.checkpoints (\
            group_id String, topic String, partition UInt32, slot UInt8, \
            next_offset Int64, chunk UInt32, chunks UInt32, data String, written_at DateTime) \
         ENGINE = ReplacingMergeTree(next_offset) \
         ORDER BY (group_id, topic, partition, slot, chunk)",
        ],
    },
    Migration {
        version: 3,
        description: "live window status (latest per window)",
        statements: &["CREATE TABLE IF NOT EXISTS {db}.window_status (\
            window_id String, center_id String, region String, updated_at DateTime, doc String) \
         ENGINE = ReplacingMergeTree(updated_at) ORDER BY window_id"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_idempotent() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted, "strictly increasing versions");
        for m in MIGRATIONS {
            for s in m.statements {
                assert!(s.contains("IF NOT EXISTS") && s.contains("{db}."), "{s}");
                for banned in ["LowCardinality", "Nullable", "JSON", "Object("] {
                    assert!(!s.contains(banned), "{banned} does not work on 18.16: {s}");
                }
            }
        }
    }
}

//! The schemas, as numbered migrations: ClickHouse's ([`MIGRATIONS`]) and SQLite's
//! ([`SQLITE_MIGRATIONS`]).
//!
//! The two share one numbering: a version present in both means the same change (same
//! description, tables of the same meaning and keys), and a version used by one backend alone
//! (SQLite's 4, the embedded mode's ingest log) is never reused by the other for something else.
//!
//! ClickHouse's is written for both Debian's ClickHouse 18.16 and current releases: plain `String`/`DateTime`/
//! integer columns (no `LowCardinality`, `Nullable` or JSON types, which 18.16 lacks or gates),
//! `MergeTree`-family engines with the `PARTITION BY`/`ORDER BY` syntax both understand, and
//! `FINAL` to read de-duplicated rows. Every statement is idempotent (`IF NOT EXISTS`), so two
//! processes migrating at once do no harm.

/// One migration: a version, what it does, and its statements (ClickHouse: `{db}` is the
/// database).
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

/// Migration 7's description, the same in both backends.
const MIGRATION_7: &str = "notification delivery records";
const MIGRATION_10: &str = "source health: every event's source, report time and delay";

/// Migration 5's description, the same in both backends.
const MIGRATION_5: &str = "activity facts; history and timeline access paths";

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
    Migration {
        version: 5,
        description: MIGRATION_5,
        statements: &[
            // Dated facts of the 绩效 measures that are neither finished cases nor alerts:
            // acceptances, ratings, complaints and their resolutions. A re-delivery collapses.
            "CREATE TABLE IF NOT EXISTS {db}.activity (\
            kind String, id String, center_id String, region String, department String, \
            window_id String, staff_id String, item_code String, at DateTime, value Int32) \
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(at) ORDER BY (region, kind, id)",
            // The alerts again, ordered for jurisdiction and period (history, 绩效 counts):
            // `alerts` is ordered by id, so every such read scanned whole months. Both versions
            // of an alert share region and fired_at, so this key collapses what alert_id does.
            // Written by insert_alerts with `alerts`; filled from it when created (18.16 has no
            // projections).
            "CREATE TABLE IF NOT EXISTS {db}.alerts_by_region \
         ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(fired_at) \
         ORDER BY (region, fired_at, alert_id) AS SELECT * FROM {db}.alerts",
            // The events that belong to a case, ordered by case: a timeline is a key lookup
            // instead of a scan of `events`. Written by insert_events with `events`.
            "CREATE TABLE IF NOT EXISTS {db}.case_events \
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(occurred_at) \
         ORDER BY (case_id, region, occurred_at, event_id) \
         AS SELECT * FROM {db}.events WHERE case_id != ''",
        ],
    },
    Migration {
        version: 6,
        description: "per-month 绩效 totals of merged parts (ClickHouse only)",
        statements: &[
            // Per merged part of case_facts, alerts_by_region or activity and per dimension:
            // the 绩效 tally (row count, then the table's sums, see query::tally_columns) of
            // each region and key, computed once. `batch` names one computation; a part's
            // totals are used only through the batch its perf_month_parts row names, so a
            // computation that failed half-way or ran twice at once is never summed.
            "CREATE TABLE IF NOT EXISTS {db}.perf_month (\
            batch String, region String, key String, n UInt64, c0 UInt64, c1 UInt64, \
            c2 UInt64, c3 UInt64, c4 UInt64, c5 UInt64, c6 UInt64, c7 UInt64, c8 UInt64) \
         ENGINE = MergeTree() ORDER BY (batch, region, key)",
            // The finished computations: written after their perf_month rows, with the
            // period the part's rows span (seconds), which a query must cover to use them.
            // A row with dimension '' (no batch) records a part checked to hold each sorting
            // key once, so that it is read without FINAL (store::clickhouse).
            "CREATE TABLE IF NOT EXISTS {db}.perf_month_parts (\
            source String, dimension String, part String, batch String, \
            min_time UInt32, max_time UInt32) \
         ENGINE = MergeTree() ORDER BY (dimension, source, part)",
        ],
    },
    Migration {
        version: 7,
        description: MIGRATION_7,
        statements: &[
            // Notification deliveries: a key present means "never send again". Re-recorded
            // keys collapse; readers only ask whether a key exists.
            "CREATE TABLE IF NOT EXISTS {db}.notifications (\
            alert_id String, status String, target String, level String, fate String, \
            detail String, at DateTime) \
         ENGINE = ReplacingMergeTree() ORDER BY (alert_id, status, target)",
        ],
    },
    Migration {
        version: 10,
        description: MIGRATION_10,
        statements: &[
            // Source health (SPEC §10): one row per event, keyed like `events` but ordered by
            // region and source, so a jurisdiction's sources are a range. Written by
            // insert_events with `events`; a re-delivered event collapses.
            "CREATE TABLE IF NOT EXISTS {db}.source_events (\
            source String, region String, center_id String, event_id String, kind String, \
            case_id String, occurred_at DateTime, reported_at DateTime, day UInt16, \
            delay_seconds Int32, corrects UInt8) \
         ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(occurred_at) \
         ORDER BY (region, source, occurred_at, event_id)",
        ],
    },
];

/// SQLite's ledger of applied migrations.
pub const SQLITE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT";

/// SQLite's self-test table (see [`SELF_TEST`]).
pub const SQLITE_SELF_TEST: &str = "CREATE TABLE IF NOT EXISTS self_test (\
    token TEXT NOT NULL, at INTEGER NOT NULL, n INTEGER NOT NULL) STRICT";

/// The SQLite schema of the embedded mode. ClickHouse's de-duplication becomes primary keys
/// plus upserts (`store::sqlite` writes `ON CONFLICT … DO UPDATE … WHERE` the new version is at
/// least the stored one), with the same keys as the ClickHouse `ORDER BY`s. `STRICT` tables
/// refuse a value of the wrong type instead of storing it.
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, alerts, alert actions, dead letters, case facts",
        statements: &[
            "CREATE TABLE IF NOT EXISTS events (\
            event_id TEXT NOT NULL, kind TEXT NOT NULL, occurred_at INTEGER NOT NULL, \
            received_at INTEGER NOT NULL, center_id TEXT NOT NULL, region TEXT NOT NULL, \
            case_id TEXT NOT NULL, raw TEXT NOT NULL, \
            PRIMARY KEY (region, occurred_at, event_id)) STRICT",
            // A case's timeline.
            "CREATE INDEX IF NOT EXISTS events_by_case ON events (case_id, occurred_at)",
            "CREATE TABLE IF NOT EXISTS alerts (\
            alert_id TEXT NOT NULL PRIMARY KEY, rule TEXT NOT NULL, level TEXT NOT NULL, \
            status TEXT NOT NULL, version INTEGER NOT NULL, fired_at INTEGER NOT NULL, \
            center_id TEXT NOT NULL, region TEXT NOT NULL, department TEXT NOT NULL, \
            window_id TEXT NOT NULL, staff_id TEXT NOT NULL, case_id TEXT NOT NULL, \
            item_code TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL, \
            evidence TEXT NOT NULL) STRICT",
            // Jurisdiction lists: a region prefix range, newest first.
            "CREATE INDEX IF NOT EXISTS alerts_by_region ON alerts (region, fired_at)",
            // Append-only audit trail: no key.
            "CREATE TABLE IF NOT EXISTS alert_actions (\
            alert_id TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, \
            at INTEGER NOT NULL, reason TEXT NOT NULL, reply_deadline INTEGER NOT NULL, \
            region TEXT NOT NULL) STRICT",
            "CREATE TABLE IF NOT EXISTS dead_letters (\
            received_at INTEGER NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL, \
            field TEXT NOT NULL, message TEXT NOT NULL, raw TEXT NOT NULL, \
            PRIMARY KEY (received_at, source)) STRICT",
            "CREATE TABLE IF NOT EXISTS case_facts (\
            case_id TEXT NOT NULL, center_id TEXT NOT NULL, region TEXT NOT NULL, \
            department TEXT NOT NULL, window_id TEXT NOT NULL, staff_id TEXT NOT NULL, \
            item_code TEXT NOT NULL, case_type TEXT NOT NULL, channel TEXT NOT NULL, \
            accepted_at INTEGER NOT NULL, completed_at INTEGER NOT NULL, result TEXT NOT NULL, \
            start INTEGER NOT NULL, deemed INTEGER NOT NULL, promised_days INTEGER NOT NULL, \
            promised_unit TEXT NOT NULL, legal_days INTEGER NOT NULL, legal_unit TEXT NOT NULL, \
            extension_days INTEGER NOT NULL, pause_days INTEGER NOT NULL, \
            deadline_date INTEGER NOT NULL, deadline INTEGER NOT NULL, \
            legal_deadline INTEGER NOT NULL, working_days_used INTEGER NOT NULL, \
            on_time INTEGER NOT NULL, early INTEGER NOT NULL, on_site INTEGER NOT NULL, \
            within_legal INTEGER NOT NULL, version INTEGER NOT NULL, \
            PRIMARY KEY (region, case_id)) STRICT",
        ],
    },
    Migration {
        version: 2,
        description: "engine checkpoints per consumer group and partition",
        statements: &[
            // One row per slot (no chunks: a BLOB holds any snapshot); the higher next_offset
            // replaces the lower.
            "CREATE TABLE IF NOT EXISTS checkpoints (\
            group_id TEXT NOT NULL, topic TEXT NOT NULL, \"partition\" INTEGER NOT NULL, \
            slot INTEGER NOT NULL, next_offset INTEGER NOT NULL, data BLOB NOT NULL, \
            written_at INTEGER NOT NULL, \
            PRIMARY KEY (group_id, topic, \"partition\", slot)) STRICT",
        ],
    },
    Migration {
        version: 3,
        description: "live window status (latest per window)",
        statements: &["CREATE TABLE IF NOT EXISTS window_status (\
            window_id TEXT NOT NULL PRIMARY KEY, center_id TEXT NOT NULL, \
            region TEXT NOT NULL, updated_at INTEGER NOT NULL, doc TEXT NOT NULL) STRICT"],
    },
    Migration {
        version: 4,
        description: "ingest log (embedded mode; SQLite only)",
        statements: &[
            // The embedded mode's "Kafka": accepted input, in order. AUTOINCREMENT so a
            // sequence number is never reused, even after the newest entries are deleted;
            // sqlite_sequence keeps the highest one ever assigned.
            "CREATE TABLE IF NOT EXISTS ingest_log (\
            seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL, \
            source TEXT NOT NULL, payload BLOB NOT NULL) STRICT",
        ],
    },
    Migration {
        version: 5,
        description: MIGRATION_5,
        statements: &[
            "CREATE TABLE IF NOT EXISTS activity (\
            kind TEXT NOT NULL, id TEXT NOT NULL, center_id TEXT NOT NULL, \
            region TEXT NOT NULL, department TEXT NOT NULL, window_id TEXT NOT NULL, \
            staff_id TEXT NOT NULL, item_code TEXT NOT NULL, at INTEGER NOT NULL, \
            value INTEGER NOT NULL, PRIMARY KEY (region, kind, id)) STRICT",
            // 绩效 counts select a period: rows by date.
            "CREATE INDEX IF NOT EXISTS activity_by_time ON activity (at)",
            "CREATE INDEX IF NOT EXISTS case_facts_by_completion ON case_facts (completed_at)",
        ],
    },
    Migration {
        version: 7,
        description: MIGRATION_7,
        statements: &["CREATE TABLE IF NOT EXISTS notifications (\
            alert_id TEXT NOT NULL, status TEXT NOT NULL, target TEXT NOT NULL, \
            level TEXT NOT NULL, fate TEXT NOT NULL, detail TEXT NOT NULL, \
            at INTEGER NOT NULL, PRIMARY KEY (alert_id, status, target)) STRICT"],
    },
    Migration {
        version: 9,
        description:
            "identities of the events posted to the ingest log (embedded mode; SQLite only)",
        // The (region, source, event_id) identity of every event the ingest log holds, so that
        // `POST /api/v1/events` answers `duplicate` for an event already received however long
        // ago (the engine's own filter remembers only the last `dedup_capacity`).
        statements: &[
            "CREATE TABLE IF NOT EXISTS event_keys (key BLOB PRIMARY KEY) \
            WITHOUT ROWID, STRICT",
        ],
    },
    Migration {
        version: 10,
        description: MIGRATION_10,
        statements: &[
            "CREATE TABLE IF NOT EXISTS source_events (\
            source TEXT NOT NULL, region TEXT NOT NULL, center_id TEXT NOT NULL, \
            event_id TEXT NOT NULL, kind TEXT NOT NULL, case_id TEXT NOT NULL, \
            occurred_at INTEGER NOT NULL, reported_at INTEGER NOT NULL, day INTEGER NOT NULL, \
            delay_seconds INTEGER NOT NULL, corrects INTEGER NOT NULL, \
            PRIMARY KEY (region, source, occurred_at, event_id)) STRICT",
            // "Reported after its case's completion": a case's completions by case.
            "CREATE INDEX IF NOT EXISTS source_events_by_case \
            ON source_events (case_id, kind)",
        ],
    },
    Migration {
        version: 11,
        description: "source health: completions by case instead of every event by case \
            (SQLite only)",
        statements: &[
            // Migration 10's index took every event at a random place (by case id) and no
            // query used it: the health query's completions (`kind = 'case.completed'`, by
            // region and case) scanned the table. This one holds only completions, in the
            // order that query groups them, with the report time it reads.
            "DROP INDEX IF EXISTS source_events_by_case",
            "CREATE INDEX IF NOT EXISTS source_completions \
            ON source_events (region, case_id, reported_at) WHERE kind = 'case.completed'",
        ],
    },
    Migration {
        version: 12,
        description: "events refer to their ingest log entry instead of copying it \
            (SQLite only)",
        statements: &[
            // The embedded mode's events come from the ingest log, which keeps every line
            // (it is not trimmed): `raw` stays empty and `log_seq` names the entry, instead of
            // the same bytes written a second time (docs/EMBEDDED.md). Rows written otherwise
            // keep `raw`.
            "ALTER TABLE events ADD COLUMN log_seq INTEGER",
            // Every event with its line, wherever it is kept: what reads `raw` reads this.
            "CREATE VIEW IF NOT EXISTS event_lines AS \
            SELECT e.*, COALESCE(CAST(l.payload AS TEXT), e.raw) AS line \
            FROM events e LEFT JOIN ingest_log l ON l.seq = e.log_seq",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_idempotent() {
        for list in [MIGRATIONS, SQLITE_MIGRATIONS] {
            let versions: Vec<u32> = list.iter().map(|m| m.version).collect();
            let mut sorted = versions.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(versions, sorted, "strictly increasing versions");
            for s in list.iter().flat_map(|m| m.statements) {
                // A dropped object may be gone, and a column added is added once (the
                // ledger row commits in the same transaction): no other exceptions.
                let drop = s.starts_with("DROP ") && s.contains(" IF EXISTS ");
                let column = s.starts_with("ALTER TABLE ") && s.contains(" ADD COLUMN ");
                assert!(s.contains("IF NOT EXISTS") || drop || column, "{s}");
            }
        }
        for m in MIGRATIONS {
            for s in m.statements {
                assert!(s.contains("IF NOT EXISTS") && s.contains("{db}."), "{s}");
                for banned in ["LowCardinality", "Nullable", "JSON", "Object("] {
                    assert!(!s.contains(banned), "{banned} does not work on 18.16: {s}");
                }
            }
        }
    }

    #[test]
    fn a_version_means_the_same_in_both_backends() {
        for sqlite in SQLITE_MIGRATIONS {
            if let Some(clickhouse) = MIGRATIONS.iter().find(|m| m.version == sqlite.version) {
                assert_eq!(sqlite.description, clickhouse.description);
            } else {
                assert!(
                    sqlite.description.contains("SQLite only"),
                    "version {} is SQLite's alone: say so",
                    sqlite.version
                );
            }
        }
        for clickhouse in MIGRATIONS {
            assert!(
                SQLITE_MIGRATIONS
                    .iter()
                    .any(|m| m.version == clickhouse.version)
                    || clickhouse.description.contains("ClickHouse only"),
                "ClickHouse migration {} has no SQLite counterpart: say it is ClickHouse's alone",
                clickhouse.version
            );
        }
    }
}

/// The ClickHouse DDL of every migration for `database`, as `jiancha migrate` would run it.
///
/// Without a cluster: the statements of [`LEDGER`], [`SELF_TEST`] and [`MIGRATIONS`] as they
/// are. With `cluster` (a name from the servers' `remote_servers`), each table `T` becomes
/// - `T_local ON CLUSTER`: the same columns and keys with the `Replicated` variant of its
///   engine (ZooKeeper path `/clickhouse/tables/{shard}/DB/T_local`, replica `{replica}`: the
///   servers need those macros), and
/// - `T ON CLUSTER AS T_local ENGINE = Distributed(cluster, DB, T_local, cityHash64(ORDER BY
///   key))`: rows with the same sorting key land on the same shard, so `ReplacingMergeTree`
///   still collapses re-deliveries and `FINAL` still sees one row per key.
///
/// Tables created `AS SELECT` from another (the access paths of migration 5) are created empty
/// `AS` their source's local table; on a fresh cluster there is nothing to copy.
pub fn cluster_statements(database: &str, cluster: Option<&str>) -> Result<Vec<String>, String> {
    let plain =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain(database) {
        return Err(format!(
            "database name {database:?}: letters, digits and _ only"
        ));
    }
    let all = [LEDGER, SELF_TEST]
        .into_iter()
        .chain(MIGRATIONS.iter().flat_map(|m| m.statements.iter().copied()));
    let Some(cluster) = cluster else {
        return Ok(all.map(|s| s.replace("{db}", database)).collect());
    };
    if !plain(cluster) {
        return Err(format!(
            "cluster name {cluster:?}: letters, digits and _ only"
        ));
    }
    let mut out = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"
    )];
    for statement in all {
        out.extend(clustered(statement, database, cluster)?);
    }
    Ok(out)
}

/// One `CREATE TABLE` as its replicated local table and Distributed front.
fn clustered(statement: &str, db: &str, cluster: &str) -> Result<[String; 2], String> {
    let s = statement.replace("{db}", db);
    let prefix = format!("CREATE TABLE IF NOT EXISTS {db}.");
    let rest = s
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("not a CREATE TABLE: {s}"))?;
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| format!("no table name: {s}"))?;
    let (table, rest) = rest.split_at(name_end);
    let engine_at = rest
        .find("ENGINE = ")
        .ok_or_else(|| format!("no engine: {s}"))?;
    let (columns, engine) = rest.split_at(engine_at);
    let engine = &engine["ENGINE = ".len()..];
    let open = engine
        .find('(')
        .ok_or_else(|| format!("engine without (): {s}"))?;
    let close = engine[open..]
        .find(')')
        .map(|i| open + i)
        .ok_or_else(|| format!("engine without (): {s}"))?;
    let (engine_name, engine_args) = (&engine[..open], &engine[open + 1..close]);
    let mut tail = engine[close + 1..].to_string();
    // `… AS SELECT * FROM db.source [WHERE …]`: create empty, shaped like the source.
    let mut columns = columns.trim().to_string();
    if let Some(at) = tail.find(" AS SELECT * FROM ") {
        let source = tail[at + " AS SELECT * FROM ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        tail.truncate(at);
        columns = format!("AS {source}_local");
    }
    let order_by = tail
        .split("ORDER BY ")
        .nth(1)
        .map(|k| {
            k.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .to_string()
        })
        .ok_or_else(|| format!("no ORDER BY: {s}"))?;
    let path = format!("'/clickhouse/tables/{{shard}}/{db}/{table}_local', '{{replica}}'");
    let args = if engine_args.trim().is_empty() {
        path
    } else {
        format!("{path}, {}", engine_args.trim())
    };
    let local = format!(
        "CREATE TABLE IF NOT EXISTS {db}.{table}_local ON CLUSTER {cluster} {columns} \
         ENGINE = Replicated{engine_name}({args}){tail}"
    );
    let front = format!(
        "CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER {cluster} AS {db}.{table}_local \
         ENGINE = Distributed({cluster}, {db}, {table}_local, cityHash64({order_by}))"
    );
    Ok([local, front])
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    #[test]
    fn every_table_gets_a_replicated_local_table_and_a_distributed_front() {
        let plain = cluster_statements("jc", None).expect("plain");
        let clustered = cluster_statements("jc", Some("city")).expect("clustered");
        assert_eq!(clustered.len(), 1 + 2 * plain.len());
        assert_eq!(
            clustered[0],
            "CREATE DATABASE IF NOT EXISTS jc ON CLUSTER city"
        );
        let alerts = clustered
            .iter()
            .position(|s| s.starts_with("CREATE TABLE IF NOT EXISTS jc.alerts_local "))
            .expect("alerts_local");
        assert!(
            clustered[alerts].contains(
                "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/jc/alerts_local', '{replica}', version) PARTITION BY toYYYYMM(fired_at) ORDER BY alert_id"
            ),
            "{}",
            clustered[alerts]
        );
        assert_eq!(
            clustered[alerts + 1],
            "CREATE TABLE IF NOT EXISTS jc.alerts ON CLUSTER city AS jc.alerts_local \
             ENGINE = Distributed(city, jc, alerts_local, cityHash64(alert_id))"
        );
        let by_region = clustered
            .iter()
            .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS jc.alerts_by_region_local "))
            .expect("by region");
        assert!(by_region
            .contains("ON CLUSTER city AS jc.alerts_local ENGINE = ReplicatedReplacingMergeTree("));
        assert!(!by_region.contains("SELECT"), "{by_region}");
        for s in &clustered[1..] {
            assert!(s.contains("ON CLUSTER city"), "{s}");
            assert!(!s.contains("{db}"), "{s}");
        }
        assert!(cluster_statements("jc", Some("a-b")).is_err());
    }
}

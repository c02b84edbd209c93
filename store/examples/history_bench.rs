//! The 绩效 and history queries at scale on ClickHouse (docs/BENCHMARKS.md): fills a fresh
//! database with 10M case facts, 10M alerts (1% of them also retracted) and 13M activity rows
//! generated inside ClickHouse (`INSERT … SELECT … FROM system.numbers`), spread like one
//! province: 120 counties 43xxxx, 100 departments, 5,000 windows and staff, 1,000 items, twelve
//! months of 2025. Old months are merged (`OPTIMIZE … FINAL`, as background merges leave them);
//! December then gets a late batch, as a current month does (its late keys are read with
//! `FINAL`). Then it times each query: one warm-up (its time on stderr: the first call after a
//! merge also stores the merged months' totals), then `RUNS` runs, min and median. The
//! database is dropped at the end.
//!
//! `cargo run --release -p store --example history_bench` (JIANCHA_CLICKHOUSE_URL, default
//! http://127.0.0.1:8123).

use std::time::{Duration, Instant};

use store::clickhouse::ClickHouseStore;
use store::{Dimension, HistoryQuery, PerfQuery, Store};

const DB: &str = "jiancha_bench";
const RUNS: usize = 7;

/// 2025-01-01T00:00:00+08:00, and the months after it.
const JAN: u32 = 1_735_660_800 - 8 * 3_600;
const JUN: u32 = 1_748_707_200 - 8 * 3_600;
const JUL: u32 = 1_751_299_200 - 8 * 3_600;
const DEC: u32 = 1_764_518_400 - 8 * 3_600;
const NEXT_YEAR: u32 = 1_767_196_800 - 8 * 3_600;

const FACTS: &str = r#"INSERT INTO {db}.case_facts SELECT
  concat('C', toString(number)) AS case_id,
  concat('CTR', toString(s % 120)) AS center_id,
  concat('43', substring(toString(101 + intDiv(s % 120, 10)), 2, 2), substring(toString(102 + s % 10), 2, 2)) AS region,
  concat('D', toString(s % 100)) AS department,
  concat('W', toString(s)) AS window_id,
  concat('S', toString(s)) AS staff_id,
  concat('I', toString(h2 % 1000)) AS item_code,
  if(h2 % 3 = 0, 'immediate', 'promised') AS case_type,
  'window' AS channel,
  toDateTime(c - (h3 % 15) * 86400) AS accepted_at,
  toDateTime(c) AS completed_at,
  'approved' AS result,
  toDate(c - (h3 % 15) * 86400) AS start,
  0 AS deemed,
  toUInt16(5 + h3 % 10) AS promised_days, 'working_days' AS promised_unit,
  toUInt16(if(h3 % 7 = 0, 0, 20)) AS legal_days, 'working_days' AS legal_unit,
  toUInt16(0) AS extension_days, toUInt16(0) AS pause_days,
  toDate(c) AS deadline_date, toDateTime(c + 3600) AS deadline, toDateTime(c + 86400) AS legal_deadline,
  toUInt16(h3 % 15) AS working_days_used,
  toUInt8(h % 50 != 0) AS on_time, toUInt8(h3 % 4 = 0) AS early, toUInt8(h2 % 3 = 0) AS on_site, 1 AS within_legal,
  toUInt32(c) AS version
FROM (SELECT number, intHash32(number) AS h, intHash32(number + 1000000000) AS h2, intHash32(number + 2000000000) AS h3,
             h % 5000 AS s, 1735632000 + h2 % 31536000 AS c FROM system.numbers LIMIT 10000000)"#;

const ALERTS: &str = r#"INSERT INTO {db}.alerts SELECT
  concat('A', toString(number)) AS alert_id,
  arrayElement(['case.overdue','case.near_deadline','window.absent','queue.long_wait','complaint.filed','discipline.ladder','fee.irregular','case.outside_system','rating.low','window.early_close'], h % 10 + 1) AS rule,
  arrayElement(['red','warning','yellow','warning','yellow','red','red','red','warning','yellow'], h % 10 + 1) AS level,
  'open' AS status, toUInt8(0) AS version,
  toDateTime(c) AS fired_at,
  concat('CTR', toString(s % 120)) AS center_id,
  concat('43', substring(toString(101 + intDiv(s % 120, 10)), 2, 2), substring(toString(102 + s % 10), 2, 2)) AS region,
  concat('D', toString(s % 100)) AS department,
  concat('W', toString(s)) AS window_id,
  concat('S', toString(s)) AS staff_id,
  concat('C', toString(h2 % 10000000)) AS case_id,
  concat('I', toString(h2 % 1000)) AS item_code,
  concat('{"case_id":"C', toString(h2 % 10000000), '"}') AS subject,
  '黄牌：办件已超过承诺时限，请立即督办' AS message,
  concat('{"deadline_date":"', toString(toDate(c)), '","working_days_used":', toString(h % 30), '}') AS evidence
FROM (SELECT number, intHash32(number + 3000000000) AS h, intHash32(number + 4000000000) AS h2,
             intHash32(number + 5000000000) % 5000 AS s, 1735632000 + h2 % 31536000 AS c FROM system.numbers LIMIT 10000000)"#;

/// 1% of the alerts retracted (version 1), in both alert tables.
const RETRACTIONS: &str = "INSERT INTO {db}.{t} SELECT alert_id, rule, level, 'retracted', \
    toUInt8(1), fired_at, center_id, region, department, window_id, staff_id, case_id, \
    item_code, subject, message, evidence FROM {db}.alerts WHERE cityHash64(alert_id) % 100 = 0";

/// An acceptance per case (at its acceptance time) and a rating for 30% of them.
const ACTIVITY: &str = "INSERT INTO {db}.activity SELECT 'accepted', case_id, center_id, \
    region, department, window_id, staff_id, item_code, accepted_at, 0 FROM {db}.case_facts";
const RATINGS: &str = "INSERT INTO {db}.activity SELECT 'evaluation', concat('E', case_id), \
    center_id, region, department, window_id, staff_id, item_code, completed_at, \
    toInt32(1 + cityHash64(case_id) % 5) FROM {db}.case_facts WHERE cityHash64(case_id) % 10 < 3";

/// A late batch into December: 1,000 re-delivered facts and alerts.
const LATE: &[&str] = &[
    "INSERT INTO {db}.case_facts SELECT * FROM {db}.case_facts \
     WHERE completed_at >= toDateTime(DEC_START) LIMIT 1000",
    "INSERT INTO {db}.alerts_by_region SELECT * FROM {db}.alerts_by_region \
     WHERE fired_at >= toDateTime(DEC_START) LIMIT 1000",
    "INSERT INTO {db}.activity SELECT * FROM {db}.activity \
     WHERE at >= toDateTime(DEC_START) LIMIT 1000",
];

async fn sql(client: &clickhouse::Client, text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let text = text
        .replace("{db}", DB)
        .replace("DEC_START", &DEC.to_string());
    client
        .query(&text)
        .with_setting("max_memory_usage", "8000000000")
        .execute()
        .await?;
    Ok(())
}

async fn time<F, Fut, T>(name: &str, mut f: F) -> Result<(), Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, store::StoreError>>,
{
    // The first call also computes the stored totals of merged months it is the first to
    // read: reported apart, on stderr.
    let first = Instant::now();
    let rows = f().await?.len();
    eprintln!(
        "{name}: first call {:.0} ms",
        first.elapsed().as_secs_f64() * 1e3
    );
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        f().await?;
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "| {name} | {rows} | {:.0} | {:.0} |",
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let store = ClickHouseStore::new(&url, DB)?;
    let client = clickhouse::Client::default()
        .with_url(&url)
        .with_compression(clickhouse::Compression::None);
    store.drop_database().await?;
    store.migrate().await?;
    let fill = Instant::now();
    sql(&client, FACTS).await?;
    sql(&client, ALERTS).await?;
    sql(
        &client,
        "INSERT INTO {db}.alerts_by_region SELECT * FROM {db}.alerts",
    )
    .await?;
    for t in ["alerts", "alerts_by_region"] {
        sql(&client, &RETRACTIONS.replace("{t}", t)).await?;
    }
    sql(&client, ACTIVITY).await?;
    sql(&client, RATINGS).await?;
    eprintln!("filled in {:.0} s", fill.elapsed().as_secs_f64());
    let merge = Instant::now();
    for t in ["case_facts", "alerts_by_region", "activity"] {
        sql(&client, &format!("OPTIMIZE TABLE {{db}}.{t} FINAL")).await?;
    }
    for statement in LATE {
        sql(&client, statement).await?;
    }
    eprintln!("merged in {:.0} s", merge.elapsed().as_secs_f64());

    println!("| query | rows | min ms | median ms |\n|---|---:|---:|---:|");
    let perf = |prefix: &'static str, from: u32, to: u32, by: Dimension| {
        let store = store.clone();
        move || {
            let store = store.clone();
            async move {
                store
                    .perf_counts(&PerfQuery {
                        region_prefix: prefix.into(),
                        from,
                        to,
                        by,
                    })
                    .await
            }
        }
    };
    for (scope, prefix) in [("province 43", "43"), ("county 430305", "430305")] {
        for (by_name, by) in [
            ("department", Dimension::Department),
            ("staff", Dimension::Staff),
        ] {
            time(
                &format!("perf_counts, {scope}, June, by {by_name}"),
                perf(prefix, JUN, JUL, by),
            )
            .await?;
            time(
                &format!("perf_counts, {scope}, December (unmerged), by {by_name}"),
                perf(prefix, DEC, NEXT_YEAR, by),
            )
            .await?;
            time(
                &format!("perf_counts, {scope}, 2025, by {by_name}"),
                perf(prefix, JAN, NEXT_YEAR, by),
            )
            .await?;
        }
    }
    let page = HistoryQuery {
        region_prefix: "430305".into(),
        from: JUN,
        to: JUL,
        rule: Some("case.overdue".into()),
        limit: 50,
        ..HistoryQuery::default()
    };
    time(
        "history, county 430305, case.overdue, June, first page of 50",
        || store.history(&page),
    )
    .await?;
    // The cursor of the 10th page: the last row of the first 450.
    let first = store
        .history(&HistoryQuery {
            limit: 450,
            ..page.clone()
        })
        .await?;
    let deep = HistoryQuery {
        after: first.last().map(|a| (a.fired_at, a.alert_id.clone())),
        ..page.clone()
    };
    time("history, same, 10th page by cursor", || {
        store.history(&deep)
    })
    .await?;
    let province = HistoryQuery {
        region_prefix: "43".into(),
        ..page.clone()
    };
    time("history, province, case.overdue, June, first page", || {
        store.history(&province)
    })
    .await?;
    time("case_events of one case", || {
        store.case_events("C123456", 100)
    })
    .await?;
    store.drop_database().await?;
    Ok(())
}

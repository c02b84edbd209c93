//! Dead letters never overwrite each other (issue 20, part 6), in ClickHouse: lines refused over
//! HTTP in the same second, with the same line numbers, as `POST /api/v1/events` makes them,
//! stored through `node::glue` the way both HTTP sinks store them. (SQLite: the burst test in
//! `embedded.rs`, end to end.) Needs ClickHouse at `JIANCHA_CLICKHOUSE_URL` (default
//! 127.0.0.1:8123; `./scripts/test.sh` starts one): skipped without it when run by hand, a
//! failure when `CI` is set.

use dashboard_api::events::Refused;
use store::clickhouse::ClickHouseStore;
use store::{DeadLetterQuery, Store};

#[tokio::test]
async fn refused_lines_of_one_second_each_keep_their_dead_letter_in_clickhouse() {
    let url =
        std::env::var("JIANCHA_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let db = format!("jiancha_test_dead_burst_{}", std::process::id());
    let store = ClickHouseStore::new(&url, &db).expect("database name");
    match store.server_version().await {
        Ok(_) => {}
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping: no ClickHouse at {url} ({e}); ./scripts/test.sh starts one");
            return;
        }
        Err(e) => panic!("CI needs ClickHouse at {url}: {e}"),
    }
    store.migrate().await.expect("migrate");
    let second = 1_790_000_000;
    // Five requests of ten refused lines, all received in the same second.
    let rows: Vec<_> = (0..5)
        .flat_map(|request| {
            (1..=10).map(move |line| Refused {
                received_at: second,
                source: format!("http:pj-publisher:{line}"),
                reason: "unknown_kind".into(),
                field: "kind".into(),
                message: "not a kind".into(),
                raw: format!(r#"{{"event_id":"bad-{request}-{line}"}}"#).into_bytes(),
            })
        })
        .map(|r| node::glue::dead_letter_row(&r))
        .collect();
    store.insert_dead_letters(&rows).await.expect("insert");
    // Read back as the API reads (`FINAL`: rows of one key collapse).
    let stored = store
        .dead_letters(&DeadLetterQuery {
            from: second as u32,
            to: second as u32 + 1,
            limit: 1000,
            ..DeadLetterQuery::default()
        })
        .await
        .expect("read");
    let _ = store.drop_database().await;
    assert_eq!(stored.len(), 50, "every refused line keeps its dead letter");
    let mut raws: Vec<&str> = stored.iter().map(|d| d.raw.as_str()).collect();
    raws.sort_unstable();
    raws.dedup();
    assert_eq!(raws.len(), 50);
}

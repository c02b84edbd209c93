//! `POST /api/v1/events`: per-line results, dead letters with reasons, publisher scope, and
//! nothing acknowledged unless the sink made it durable.

mod support;

use std::sync::Arc;

use dashboard_api::events::MemorySink;
use dashboard_api::{wall_now, ApiConfig};
use support::{start, PINGJIANG};

fn event(id: &str, region: &str, occurred: rules::Instant) -> String {
    format!(
        r#"{{"event_id":"{id}","kind":"queue.ticket_issued","occurred_at":"{occurred}","center_id":"PJ-ZWFW","region":"{region}","ticket_no":"A001","window_id":"PJ-W01"}}"#
    )
}

#[tokio::test]
async fn a_batch_gets_one_result_per_line_and_invalid_lines_become_dead_letters() {
    let s = start(ApiConfig::default()).await;
    let sink = Arc::new(MemorySink::default());
    s.api.set_event_sink(sink.clone());
    let now = wall_now();
    let body = [
        event("e1", PINGJIANG, now.plus_secs(-60)),
        "{not json".to_string(),
        String::new(),
        event("e2", "430624", now.plus_secs(-60)),
        event("e3", PINGJIANG, now.plus_secs(3600)),
        r#"{"event_id":"e4","kind":"case.accepted","occurred_at":"2026-11-20T09:00:00+08:00","center_id":"PJ-ZWFW","region":"430626","item_code":"X"}"#.to_string(),
    ]
    .join("\n");
    let (status, answer) = s
        .post_raw(
            "/api/v1/events",
            "pj-publisher",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(4))
    );
    let results = answer["results"].as_array().expect("results");
    let summary: Vec<(u64, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or(""),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "accepted", ""),
            (2, "rejected", "not_json"),
            (4, "rejected", "out_of_scope"),
            (5, "rejected", "future_timestamp"),
            (6, "rejected", "missing_field"),
        ],
        "blank line 3 is skipped but numbering is kept: {answer}"
    );
    assert_eq!(results[4]["field"], "case_id");
    let got = sink.received();
    assert_eq!(got.0.len(), 1);
    assert_eq!(
        (got.0[0].event_id.as_str(), got.0[0].center_id.as_str()),
        ("e1", "PJ-ZWFW")
    );
    let dead: Vec<(&str, &str)> = got
        .1
        .iter()
        .map(|d| (d.reason.as_str(), d.source.as_str()))
        .collect();
    assert_eq!(
        dead,
        vec![
            ("not_json", "http:pj-publisher:2"),
            ("out_of_scope", "http:pj-publisher:4"),
            ("future_timestamp", "http:pj-publisher:5"),
            ("missing_field", "http:pj-publisher:6"),
        ]
    );
    assert_eq!(got.1[0].raw, b"{not json");
}

#[tokio::test]
async fn one_json_event_is_accepted_and_a_store_failure_acknowledges_nothing() {
    let s = start(ApiConfig::default()).await;
    let sink = Arc::new(MemorySink::default());
    s.api.set_event_sink(sink.clone());
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&event("one", PINGJIANG, wall_now()))
            .expect("json"),
    )
    .expect("pretty");
    let (status, answer) = s
        .post_raw(
            "/api/v1/events",
            "pj-publisher",
            "application/json",
            pretty.clone(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["event_id"], "one");

    sink.fail_with(Some("SQLite: disk I/O error"));
    let (status, answer) = s
        .post_raw("/api/v1/events", "pj-publisher", "application/json", pretty)
        .await;
    assert_eq!(status, 503, "{answer}");
    let message = answer["message"].as_str().unwrap_or("");
    assert!(
        message.contains("send it again") && message.contains("disk I/O"),
        "{message}"
    );
    assert_eq!(sink.received().0.len(), 1, "nothing more stored");
}

#[tokio::test]
async fn only_publishers_send_events_and_publishers_see_no_dashboards() {
    let s = start(ApiConfig::default()).await;
    s.api.set_event_sink(Arc::new(MemorySink::default()));
    let line = event("x", PINGJIANG, wall_now());
    let (status, answer) = s
        .post_raw(
            "/api/v1/events",
            "pj-inspector",
            "application/x-ndjson",
            line,
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["message"]
        .as_str()
        .unwrap_or("")
        .contains("--role publisher"));
    let (status, _) = s.get("/api/v1/alerts", "pj-publisher").await;
    assert_eq!(status, 403);
    let (status, _) = s.get("/api/v1/windows", "pj-publisher").await;
    assert_eq!(status, 403);
    let (status, me) = s.get("/api/v1/me", "pj-publisher").await;
    assert_eq!((status, me["role"].as_str()), (200, Some("publisher")));
    let (status, answer) = s
        .post_raw(
            "/api/v1/events",
            "pj-publisher",
            "application/x-ndjson",
            "\n\n".into(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
}

/// Fuzzing regression (fuzz target `http_ingest`): a blank body sent as `application/json` was
/// decoded as one empty event, answered 422 and stored as a `not_json` dead letter, while the
/// same body as NDJSON was refused as empty. Both are now a 400 and store nothing.
#[tokio::test]
async fn a_blank_json_body_is_refused_as_empty_and_stores_no_dead_letter() {
    let s = start(ApiConfig::default()).await;
    let sink = Arc::new(MemorySink::default());
    s.api.set_event_sink(sink.clone());
    for content_type in ["application/json", "application/json; charset=utf-8"] {
        for body in ["", " \n\t\r\n"] {
            let (status, answer) = s
                .post_raw("/api/v1/events", "pj-publisher", content_type, body.into())
                .await;
            assert_eq!(status, 400, "{content_type} {body:?}: {answer}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("empty body"),
                "{answer}"
            );
        }
    }
    let got = sink.received();
    assert!(got.0.is_empty() && got.1.is_empty(), "nothing stored");
}

/// The media type decides between one event and NDJSON, compared as RFC 9110 says: without
/// parameters, in any case. `application/jsonl` is JSON Lines, not one JSON document.
#[tokio::test]
async fn the_json_media_type_is_matched_without_parameters_and_case() {
    let s = start(ApiConfig::default()).await;
    s.api.set_event_sink(Arc::new(MemorySink::default()));
    let now = wall_now().plus_secs(-60);
    let one = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&event("one", PINGJIANG, now)).expect("json"),
    )
    .expect("pretty");
    let (status, answer) = s
        .post_raw(
            "/api/v1/events",
            "pj-publisher",
            "Application/JSON ; charset=UTF-8",
            one,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["event_id"], "one");
    let two = [event("l1", PINGJIANG, now), event("l2", PINGJIANG, now)].join("\n");
    let (status, answer) = s
        .post_raw("/api/v1/events", "pj-publisher", "application/jsonl", two)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
}

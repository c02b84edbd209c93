//! The dashboard API with real clients over loopback: jurisdiction, the inspector workflow and
//! its audit trail, escalation of unanswered 督办, resynchronisation of slow clients, auth errors.

mod support;

use std::time::Duration;

use dashboard_api::hub::Input;
use dashboard_api::ApiConfig;
use rules::alert::Level;
use rules::time::Instant;
use serde_json::{json, Value};
use support::*;

fn alerts_of(snapshot: &Value) -> Vec<String> {
    ids(&snapshot["alerts"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_sees_only_its_county_and_the_city_sees_both() {
    let s = start(ApiConfig::default()).await;
    s.feed(Input::Alert(alert(
        "pj-1",
        PINGJIANG,
        Level::Yellow,
        "W-pj-1",
    )));
    s.feed(Input::Alert(alert("xy-1", XIANGYIN, Level::Red, "W-xy-1")));
    s.feed(Input::Window(window("W-pj-1", PINGJIANG, "serving")));
    s.feed(Input::Window(window("W-xy-1", XIANGYIN, "unstaffed")));

    // REST.
    let (st, page) = s.get("/api/v1/alerts", "pj-inspector").await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(ids(&page["items"]), ["pj-1"]);
    let (_, page) = s.get("/api/v1/alerts", "yy-leader").await;
    assert_eq!(ids(&page["items"]), ["pj-1", "xy-1"]);
    let (st, err) = s.get("/api/v1/alerts/xy-1", "pj-inspector").await;
    assert_eq!(
        st, 404,
        "another county's alert does not exist for them: {err}"
    );
    assert_eq!(err["error"], "not_found");
    let (st, _) = s.get("/api/v1/alerts/xy-1", "yy-auditor").await;
    assert_eq!(st, 200);
    let (st, err) = s.get("/api/v1/alerts?region=430624", "pj-leader").await;
    assert_eq!(st, 403, "asking for the other county is refused: {err}");
    let (_, page) = s.get("/api/v1/alerts?region=43", "pj-leader").await;
    assert_eq!(
        ids(&page["items"]),
        ["pj-1"],
        "a wider region is narrowed to one's own"
    );
    let (_, w) = s.get("/api/v1/windows", "pj-leader").await;
    assert_eq!(ids(&w["items"]), ["W-pj-1"]);
    assert_eq!(w["items"][0]["open_alerts"], 1, "{w}");
    let (_, w) = s.get("/api/v1/windows", "yy-leader").await;
    assert_eq!(ids(&w["items"]), ["W-pj-1", "W-xy-1"]);

    // WebSocket: snapshots, then only in-scope changes.
    let mut county = s.live("pj-leader", "").await;
    let mut city = s.live("yy-leader", "").await;
    let snap = county.next().await;
    assert_eq!(
        (snap["type"].as_str(), snap["reason"].as_str()),
        (Some("snapshot"), Some("connect"))
    );
    assert_eq!(alerts_of(&snap), ["pj-1"]);
    assert_eq!(ids(&snap["windows"]), ["W-pj-1"]);
    let snap = city.next().await;
    assert_eq!(alerts_of(&snap), ["pj-1", "xy-1"]);
    assert_eq!(ids(&snap["windows"]), ["W-pj-1", "W-xy-1"]);

    s.feed(Input::Alert(alert("xy-2", XIANGYIN, Level::Red, "W-xy-2")));
    s.feed(Input::Alert(alert("pj-2", PINGJIANG, Level::Red, "W-pj-1")));
    let m = county.next().await;
    assert_eq!(
        m["alert"]["alert_id"], "pj-2",
        "xy-2 never reaches the county: {m}"
    );
    let first = city.next().await;
    assert_eq!(first["alert"]["alert_id"], "xy-2");
    let second = city.next().await;
    assert_eq!(second["alert"]["alert_id"], "pj-2");
    assert!(
        second["seq"].as_u64() > first["seq"].as_u64(),
        "increasing sequence"
    );
    // pj-2 is at window W-pj-1: its open-alert count moves too.
    let w = county.next().await;
    assert_eq!(
        (w["type"].as_str(), w["window"]["open_alerts"].as_u64()),
        (Some("window"), Some(2))
    );
    assert!(
        county.quiet_for(300).await.is_none(),
        "nothing else for the county"
    );

    // Filters narrow further: only red alerts of 湘阴.
    let mut red = s.live("yy-leader", "&level=red&center=C-430624").await;
    let snap = red.next().await;
    assert_eq!(alerts_of(&snap), ["xy-1", "xy-2"]);
    s.feed(Input::Alert(alert(
        "xy-3",
        XIANGYIN,
        Level::Yellow,
        "W-xy-3",
    )));
    s.feed(Input::Alert(alert("pj-3", PINGJIANG, Level::Red, "W-pj-3")));
    s.feed(Input::Alert(alert("xy-4", XIANGYIN, Level::Red, "W-xy-4")));
    assert_eq!(red.next().await["alert"]["alert_id"], "xy-4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_actions_are_checked_recorded_and_broadcast() {
    let s = start(ApiConfig::default()).await;
    s.feed(Input::Alert(alert("a1", PINGJIANG, Level::Yellow, "W1")));
    s.feed(Input::Window(window("W1", PINGJIANG, "serving")));
    s.backend.add_event(json!({"event_id":"e2","kind":"case.completed","case_id":"K-a1","occurred_at":"2026-10-14T10:00:00+08:00"}));
    s.backend.add_event(json!({"event_id":"e1","kind":"case.accepted","case_id":"K-a1","occurred_at":"2026-10-08T10:00:00+08:00"}));
    let mut watch = s.live("yy-leader", "").await;
    assert_eq!(alerts_of(&watch.next().await), ["a1"]);
    let path = "/api/v1/alerts/a1/actions";

    // Only inspectors act, and only in their county.
    let (st, e) = s
        .post(path, "pj-leader", json!({"action":"acknowledge"}))
        .await;
    assert_eq!((st, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    assert!(
        e["message"].as_str().unwrap_or("").contains("inspector"),
        "{e}"
    );
    let (st, _) = s
        .post(path, "xy-inspector", json!({"action":"acknowledge"}))
        .await;
    assert_eq!(st, 404, "another county's inspector cannot see it");
    // Checks before anything is stored.
    let (st, e) = s
        .post(
            path,
            "pj-inspector",
            json!({"action":"reply","note":"已整改"}),
        )
        .await;
    assert_eq!(st, 409, "a reply needs a 督办 first: {e}");
    let (st, e) = s
        .post(path, "pj-inspector", json!({"action":"resolve"}))
        .await;
    assert_eq!(st, 400, "resolving needs a reason: {e}");
    let (st, e) = s
        .post(path, "pj-inspector", json!({"action":"escalate"}))
        .await;
    assert_eq!(st, 400, "escalation is the system's: {e}");
    let (st, e) = s
        .post(path, "pj-inspector", json!({"action":"supervise","note":"请说明","reply_deadline":"2020-01-01T00:00:00+08:00"}))
        .await;
    assert_eq!(st, 400, "a deadline in the past: {e}");
    assert!(
        s.backend.actions().is_empty(),
        "refused actions leave no trace"
    );

    let deadline = rules::time::Instant(dashboard_api::wall_now().0 + 3 * 86_400).to_string();
    let steps = [
        json!({"action":"acknowledge","note":"已签收"}),
        json!({"action":"supervise","note":"请于三日内说明超时原因","reply_deadline": deadline}),
        json!({"action":"reply","note":"材料补正导致延误，已办结"}),
        json!({"action":"resolve","note":"经核实，已对窗口人员批评教育"}),
    ];
    let expected_status = ["acknowledged", "supervising", "supervising", "resolved"];
    for (i, step) in steps.iter().enumerate() {
        let (st, r) = s.post(path, "pj-inspector", step.clone()).await;
        assert_eq!(st, 200, "step {i}: {r}");
        assert_eq!(r["alert"]["status"], expected_status[i]);
        let m = watch.next().await;
        assert_eq!(
            (
                m["alert"]["alert_id"].as_str(),
                m["alert"]["status"].as_str()
            ),
            (Some("a1"), Some(expected_status[i])),
            "broadcast live: {m}"
        );
    }
    // The window's open-alert count went down with the resolution: a window change follows.
    let w = watch.next().await;
    assert_eq!(
        (
            w["type"].as_str(),
            w["window"]["window_id"].as_str(),
            w["window"]["open_alerts"].as_u64()
        ),
        (Some("window"), Some("W1"), Some(0)),
        "{w}"
    );
    let (st, e) = s
        .post(path, "pj-inspector", json!({"action":"dismiss","note":"x"}))
        .await;
    assert_eq!(st, 409, "the trail is closed: {e}");

    // The audit trail: who, when, why — stored and shown.
    let stored = s.backend.actions();
    let kinds: Vec<&str> = stored.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(kinds, ["acknowledge", "supervise", "reply", "resolve"]);
    assert!(stored
        .iter()
        .all(|a| a.actor == "pj-inspector" && a.region == PINGJIANG));
    assert_eq!(
        stored[1].reply_deadline.map(|t| t.to_string()),
        Some(deadline.clone())
    );
    assert_eq!(stored[3].note, "经核实，已对窗口人员批评教育");
    let (st, d) = s.get("/api/v1/alerts/a1", "yy-auditor").await;
    assert_eq!(st, 200);
    assert_eq!(d["actions"].as_array().map(Vec::len), Some(4), "{d}");
    assert_eq!(d["actions"][2]["note"], "材料补正导致延误，已办结");
    assert_eq!(d["alert"]["replied_at"], d["actions"][2]["at"]);
    assert_eq!(d["evidence"]["deadline"], "2026-10-13T00:00:00+08:00");
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["case.accepted", "case.completed"], "oldest first");

    // The active queue no longer has it; history filters still find it.
    let (_, active) = s.get("/api/v1/alerts?status=active", "pj-inspector").await;
    assert!(ids(&active["items"]).is_empty(), "{active}");
    let (_, done) = s
        .get("/api/v1/alerts?status=resolved", "pj-inspector")
        .await;
    assert_eq!(ids(&done["items"]), ["a1"]);

    // A store outage: 503 with a message, nothing applied.
    s.feed(Input::Alert(alert("a2", PINGJIANG, Level::Yellow, "W1")));
    s.backend.fail_with(Some("ClickHouse is unreachable"));
    let (st, e) = s
        .post(
            "/api/v1/alerts/a2/actions",
            "pj-inspector",
            json!({"action":"acknowledge"}),
        )
        .await;
    assert_eq!(st, 503, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing changed"),
        "{e}"
    );
    let (_, d) = s.get("/api/v1/alerts/a2", "pj-inspector").await;
    assert_eq!(d["alert"]["status"], "open");
    assert!(
        d["timeline_error"].as_str().is_some(),
        "the detail still answers: {d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_supervision_turns_the_alert_red_at_its_deadline() {
    let s = start(ApiConfig::default()).await;
    s.feed(Input::Alert(alert("late", PINGJIANG, Level::Yellow, "W1")));
    s.feed(Input::Alert(alert(
        "answered",
        PINGJIANG,
        Level::Yellow,
        "W1",
    )));
    let mut watch = s.live("pj-leader", "").await;
    watch.next().await;
    let soon = rules::time::Instant(dashboard_api::wall_now().0 + 2).to_string();
    for id in ["late", "answered"] {
        let (st, r) = s
            .post(
                &format!("/api/v1/alerts/{id}/actions"),
                "pj-inspector",
                json!({"action":"supervise","note":"限期回告","reply_deadline": soon}),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(watch.next().await["alert"]["status"], "supervising");
    }
    let (st, _) = s
        .post(
            "/api/v1/alerts/answered/actions",
            "pj-inspector",
            json!({"action":"reply","note":"已回告"}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(watch.next().await["alert"]["replied_at"].is_string());
    // Within a few seconds the unanswered one turns red; the answered one does not.
    let m = watch.next().await;
    assert_eq!(m["alert"]["alert_id"], "late", "{m}");
    assert_eq!(
        (
            m["alert"]["level"].as_str(),
            m["alert"]["escalated"].as_bool()
        ),
        (Some("red"), Some(true))
    );
    assert_eq!(m["alert"]["fired_level"], "yellow");
    assert!(
        watch.quiet_for(1500).await.is_none(),
        "escalated once, the answered one never"
    );
    let trail = s.backend.actions();
    let esc: Vec<_> = trail
        .iter()
        .filter(|a| a.action.as_str() == "escalate")
        .collect();
    assert_eq!(esc.len(), 1);
    assert_eq!(
        (esc[0].actor.as_str(), esc[0].at.to_string()),
        ("system", soon)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_resynchronised_not_dropped() {
    let s = start(ApiConfig {
        live_buffer: 64,
        ..ApiConfig::default()
    })
    .await;
    let mut slow = s.live("yy-leader", "").await;
    let first = slow.next().await;
    assert_eq!(first["type"], "snapshot");
    // The client reads nothing while 6,000 alerts of 4 KB (more than loopback's socket buffers)
    // go out: the server's send blocks, and the client's place in the change buffer is overtaken.
    let n = 6000;
    for i in 0..n {
        let mut a = alert(&format!("bulk-{i:05}"), PINGJIANG, Level::Yellow, "W1");
        a.evidence["note"] = "证".repeat(1400).into();
        s.feed(Input::Alert(a));
    }
    s.feed(Input::Alert(alert("after", PINGJIANG, Level::Red, "W1")));
    // Reading again: whatever the client shows — a snapshot replaces it, a change adds to it —
    // ends up with every alert, with at least one "lagged" snapshot on the way and sequence
    // numbers that never go back.
    let mut shown = std::collections::BTreeSet::new();
    let mut last_seq = first["seq"].as_u64().expect("seq");
    let mut lagged = 0;
    loop {
        let m = slow.next().await;
        let seq = m["seq"].as_u64().expect("seq");
        assert!(
            seq >= last_seq,
            "sequence never goes back: {seq} after {last_seq}"
        );
        last_seq = seq;
        match m["type"].as_str() {
            Some("snapshot") => {
                assert_eq!(m["reason"], "lagged");
                lagged += 1;
                shown = m["alerts"]
                    .as_array()
                    .expect("alerts")
                    .iter()
                    .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
                    .collect();
            }
            Some("alert") => {
                shown.insert(m["alert"]["alert_id"].as_str().expect("id").to_string());
            }
            _ => {}
        }
        if shown.contains("after") {
            break;
        }
    }
    assert!(lagged >= 1, "the client fell behind and was resynchronised");
    assert_eq!(shown.len(), n + 1, "nothing lost");
    let admin = s.token("hn-admin");
    let metrics = s.call("GET", "/metrics", Some(&admin), None).await.1;
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains(&format!("jiancha_ws_resyncs_total {lagged}")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_flow_and_retractions_leave_the_queue() {
    let s = start(ApiConfig {
        heartbeat: Duration::from_millis(200),
        ..ApiConfig::default()
    })
    .await;
    let a = alert("r1", PINGJIANG, Level::Yellow, "W1");
    s.feed(Input::Alert(a.clone()));
    let mut live = s.live("pj-leader", "").await;
    let snap = live.next().await;
    let hb = live.next_any(3).await;
    assert_eq!(hb["type"], "heartbeat", "{hb}");
    assert_eq!(hb["seq"], snap["seq"]);
    // A re-delivered alert changes nothing; its retraction closes it.
    s.feed(Input::Alert(a.clone()));
    s.feed(Input::Alert(retracted(a)));
    let m = live.next().await;
    assert_eq!(m["alert"]["status"], "retracted", "{m}");
    let (_, page) = s.get("/api/v1/alerts?status=active", "pj-leader").await;
    assert!(ids(&page["items"]).is_empty());
}

/// A ladder step an inspector acted on, then retracted with its card, then reached again: the
/// retraction keeps the trail and says so; the step back in force carries its new cause and its
/// trail; an earlier revision delivered again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retracted_step_keeps_its_trail_and_comes_back_when_reached_again() {
    let s = start(ApiConfig::default()).await;
    let first = alert("step3", PINGJIANG, Level::Yellow, "W1");
    s.feed(Input::Alert(first.clone()));
    let path = "/api/v1/alerts/step3/actions";
    let (st, e) = s
        .post(path, "pj-inspector", json!({"action":"acknowledge"}))
        .await;
    assert_eq!(st, 200, "{e}");
    let withdrawn = retracted(first.clone());
    s.feed(Input::Alert(withdrawn.clone()));
    let (_, doc) = s.get("/api/v1/alerts/step3", "pj-inspector").await;
    assert_eq!(doc["alert"]["status"], "retracted", "{doc}");
    assert_eq!(
        doc["actions"].as_array().map(Vec::len),
        Some(1),
        "trail kept: {doc}"
    );
    let (_, page) = s.get("/api/v1/alerts?status=active", "pj-inspector").await;
    assert!(
        ids(&page["items"]).is_empty(),
        "withdrawn: out of the queue"
    );

    let mut again = first.clone();
    again.revision = withdrawn.revision + 1;
    again.fired_at = Instant(first.fired_at.0 + 3_600);
    again.evidence = json!({"cause": {"case_id": "K-later"}});
    s.feed(Input::Alert(again.clone()));
    s.feed(Input::Alert(withdrawn));
    s.feed(Input::Alert(first));
    let (_, doc) = s.get("/api/v1/alerts/step3", "pj-inspector").await;
    let a = &doc["alert"];
    assert_eq!(
        a["status"], "acknowledged",
        "its trail decides again: {doc}"
    );
    assert_eq!(a["fired_at"], again.fired_at.to_string(), "{doc}");
    assert_eq!(a["evidence"]["cause"]["case_id"], "K-later", "{doc}");
    let (_, page) = s.get("/api/v1/alerts?status=active", "pj-inspector").await;
    assert_eq!(ids(&page["items"]), ["step3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_are_json_with_a_reason() {
    let s = start(ApiConfig::default()).await;
    let (st, e) = s.call("GET", "/api/v1/alerts", None, None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    assert!(e["message"]
        .as_str()
        .unwrap_or("")
        .contains("/api/v1/auth/login"));
    let (st, e) = s
        .call("GET", "/api/v1/alerts", Some("v1.forged.token"), None)
        .await;
    assert_eq!(st, 401, "{e}");
    let (st, e) = s
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"pj-inspector","password":"nope"})),
        )
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("unauthorized")),
        "{e}"
    );
    let (st, e) = s
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"pj-inspector"})),
        )
        .await;
    assert_eq!(st, 422, "a body without the password: {e}");
    assert_eq!(e["error"], "bad_request");
    let (st, login) = s
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username":"pj-inspector","password":PASSWORD})),
        )
        .await;
    assert_eq!(st, 200, "{login}");
    let token = login["token"].as_str().expect("token");
    let (st, me) = s.call("GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(
        (st, me["role"].as_str(), me["region"].as_str()),
        (200, Some("inspector"), Some(PINGJIANG))
    );
    // The WebSocket refuses before upgrading, with the same JSON.
    let url = format!("ws://{}/api/v1/live?access_token=bad", s.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).expect("JSON");
            assert_eq!(body["error"], "unauthorized");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    // Removing the user from the file revokes their tokens.
    let mut fewer = users();
    fewer = {
        let mut u = dashboard_api::auth::Users::default();
        for user in fewer.iter().filter(|u| u.username != "pj-inspector") {
            u.upsert(user.clone());
        }
        u
    };
    s.api.set_users(fewer);
    let (st, e) = s.call("GET", "/api/v1/me", Some(token), None).await;
    assert_eq!(st, 401, "{e}");
    assert!(e["message"]
        .as_str()
        .unwrap_or("")
        .contains("no longer exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_endpoint_is_served_and_probes_answer() {
    let s = start(ApiConfig::default()).await;
    let (st, doc) = s.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    for p in &paths {
        let concrete = p.replace("{alert_id}", "none");
        let method = if doc["paths"][p].get("get").is_some() {
            "GET"
        } else {
            "POST"
        };
        let (_, body) = s.call(method, &concrete, None, Some(json!({}))).await;
        let fallback = body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no such endpoint"));
        assert!(!fallback, "{p} is documented but not served");
    }
    let (st, body) = s.call("GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!((st, body["error"].as_str()), (404, Some("not_found")));
    assert_eq!(s.call("GET", "/healthz", None, None).await.0, 200);
    assert_eq!(s.call("GET", "/readyz", None, None).await.0, 200);
    let loading = start_loading(ApiConfig::default()).await;
    let (st, e) = loading.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (503, Some("unavailable")),
        "not loaded yet: {e}"
    );
    let (st, _) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(st, 401, "metrics need a token");
    let (st, _) = s
        .call("GET", "/metrics", Some(&s.token("pj-leader")), None)
        .await;
    assert_eq!(st, 403, "and an admin's");
    let (_, m) = s
        .call("GET", "/metrics", Some(&s.token("hn-admin")), None)
        .await;
    let text = m.as_str().expect("text");
    assert!(
        text.contains("jiancha_api_requests_total{route=\"/healthz\",status=\"200\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_lists_paginate_without_gaps_or_repeats() {
    let s = start(ApiConfig::default()).await;
    for i in 0..23 {
        s.feed(Input::Alert(alert(
            &format!("p{}", "x".repeat(i)),
            PINGJIANG,
            Level::Yellow,
            "W1",
        )));
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (st, page) = s
            .get(&format!("/api/v1/alerts?limit=10{cursor}"), "pj-inspector")
            .await;
        assert_eq!(st, 200, "{page}");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        let times: Vec<&str> = items
            .iter()
            .filter_map(|a| a["fired_at"].as_str())
            .collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(times, sorted, "newest first");
        seen.extend(
            items
                .iter()
                .map(|a| a["alert_id"].as_str().unwrap_or("").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (23, 23));
    let (st, e) = s.get("/api/v1/alerts?limit=0", "pj-inspector").await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = s.get("/api/v1/alerts?level=purple", "pj-inspector").await;
    assert_eq!(st, 400);
    assert!(
        e["message"].as_str().unwrap_or("").contains("warning"),
        "names the levels: {e}"
    );
}

/// SPEC §7 v1.1: an alert follows its case. A card revised with its case's state keeps what
/// the inspector did to it and shows the new text; a warning cleared leaves the active queue
/// live, with the trail entry 系统自动解除; older copies arriving later change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_case_revises_its_card_and_clears_its_warning() {
    let s = start(ApiConfig::default()).await;
    let warning = alert("w-1", PINGJIANG, Level::Warning, "W-pj-1");
    let yellow = alert("y-1", PINGJIANG, Level::Yellow, "W-pj-1");
    s.feed(Input::Alert(warning.clone()));
    s.feed(Input::Alert(yellow.clone()));
    let (st, r) = s
        .post(
            "/api/v1/alerts/y-1/actions",
            "pj-inspector",
            json!({"action":"acknowledge","note":"已签收"}),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    let mut live = s.live("pj-inspector", "").await;
    assert_eq!(alerts_of(&live.next().await), ["w-1", "y-1"]);

    let mut revised = yellow.clone();
    revised.revision = 1;
    revised.message = "黄牌：办件已超期 2 个工作日于 10-15 办结".into();
    revised.evidence["subject_state"] = json!({"status":"completed","closed_at":"2026-10-15T10:00:00+08:00","overdue_working_days":2});
    s.feed(Input::Alert(revised));
    let m = live.next().await;
    assert_eq!(m["alert"]["alert_id"], "y-1", "{m}");
    assert_eq!(
        m["alert"]["status"], "acknowledged",
        "the inspector's step stays"
    );
    assert_eq!(
        m["alert"]["message"],
        "黄牌：办件已超期 2 个工作日于 10-15 办结"
    );
    assert_eq!(
        m["alert"]["evidence"]["subject_state"]["overdue_working_days"],
        2
    );

    let mut cleared = warning.clone();
    cleared.status = rules::alert::AlertStatus::Cleared;
    cleared.revision = 2;
    cleared.cleared_at = rules::time::parse_rfc3339("2026-10-12T11:30:00+08:00").ok();
    cleared.evidence["cleared_by"] =
        json!({"kind":"case.completed","occurred_at":"2026-10-12T11:30:00+08:00"});
    s.feed(Input::Alert(cleared));
    let m = live.next().await;
    assert_eq!(m["alert"]["alert_id"], "w-1", "{m}");
    assert_eq!(m["alert"]["status"], "cleared");
    assert_eq!(m["alert"]["cleared_at"], "2026-10-12T11:30:00+08:00");

    // Copies that are not newer (a re-delivered firing, the revision again) change nothing.
    s.feed(Input::Alert(warning));
    s.feed(Input::Alert(yellow));
    let (_, page) = s.get("/api/v1/alerts?status=active", "pj-inspector").await;
    assert_eq!(
        ids(&page["items"]),
        ["y-1"],
        "the cleared warning left the queue"
    );
    assert_eq!(
        page["items"][0]["message"],
        "黄牌：办件已超期 2 个工作日于 10-15 办结"
    );
    let (st, detail) = s.get("/api/v1/alerts/w-1", "pj-inspector").await;
    assert_eq!(st, 200, "{detail}");
    assert_eq!(detail["alert"]["status"], "cleared");
    let trail = detail["actions"].as_array().expect("trail");
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(
        (trail[0]["action"].as_str(), trail[0]["actor"].as_str()),
        (Some("clear"), Some("system"))
    );
    assert!(
        trail[0]["note"]
            .as_str()
            .unwrap_or("")
            .starts_with("系统自动解除：办件已于 2026-10-12 11:30 办结"),
        "{trail:?}"
    );
    let (st, e) = s
        .post(
            "/api/v1/alerts/w-1/actions",
            "pj-inspector",
            json!({"action":"acknowledge"}),
        )
        .await;
    assert_eq!(st, 409, "nothing is left to do on a cleared alert: {e}");
    let (st, e) = s
        .post(
            "/api/v1/alerts/y-1/actions",
            "pj-inspector",
            json!({"action":"clear"}),
        )
        .await;
    assert_eq!(st, 400, "clearing is the engine's: {e}");
}

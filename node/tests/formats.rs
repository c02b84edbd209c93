//! The formats' own endpoints in embedded mode (docs/ADAPTERS.md, "Endpoints"): records posted
//! as an approval system posts them reach the SQLite ingest log as the adapter's events, once,
//! with corrections and withdrawals as events of their own; a malformed or mislabelled payload
//! is answered in the format's reply and adds nothing to the log or the dead letters.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use dashboard_api::formats::FormatSettings;
use node::embedded::{start, Clock, Embedded, EmbeddedConfig};
use rules::{Policy, Reference, ReferenceFiles};
use serde_json::Value;
use store::{DeadLetterQuery, Store};
use support::caught_up;

const PASSWORD: &str = "format-password-1";

const ITEMS: &str = "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
P5,不动产转移登记,BDC,promised,20,working,5,working,,,,true,hall,,accept\n";

fn reference() -> Arc<Reference> {
    Arc::new(
        Reference::parse(&ReferenceFiles {
            items: Some(("items.csv".into(), ITEMS.into())),
            windows: Some((
                "windows.csv".into(),
                "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\n".into(),
            )),
            staff: Some((
                "staff.csv".into(),
                "staff_id,name,department,window_id,in_hall,center_id\nPJ-S01,李明,BDC,PJ-W01,true,\n"
                    .into(),
            )),
            ..Default::default()
        })
        .expect("reference"),
    )
}

async fn node(dir: &Path) -> Embedded {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    for (name, role) in [
        ("qzk", Role::Publisher),
        ("insp", Role::Inspector),
        ("padm", Role::Admin),
    ] {
        users.upsert(User {
            username: name.into(),
            name: name.into(),
            role,
            region: Region::try_from("430626".to_string()).expect("region"),
            password_hash: hash.clone(),
            token_epoch: 0,
        });
    }
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        reference(),
        Policy::default(),
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("users.toml"),
        users,
        TokenKey::new(&[9u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    cfg.formats = FormatSettings::new(Vec::new(), None);
    start(cfg).await.expect("embedded mode starts")
}

fn token(node: &Embedded, user: &str) -> String {
    let mut resp = ureq::post(&format!("http://{}/api/v1/auth/login", node.addr))
        .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
        .expect("login");
    let body: Value = resp.body_mut().read_json().expect("json");
    body["token"].as_str().expect("token").to_string()
}

/// POST `body` with `headers`: (status, body text).
fn post(node: &Embedded, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(&format!("http://{}{path}", node.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).expect("post");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().expect("body"))
}

/// `xmlStr=…&accessToken=…` with the XML's bytes percent-encoded one by one.
fn form(xml: &[u8], token: &str) -> Vec<u8> {
    let mut out = b"xmlStr=".to_vec();
    for &b in xml {
        if b.is_ascii_alphanumeric() {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out.extend(format!("&accessToken={token}").bytes());
    out
}

/// The event ids in the ingest log, in order.
async fn logged(node: &Embedded) -> Vec<Value> {
    node.store
        .read_log(0, 1000)
        .await
        .expect("read log")
        .into_iter()
        .map(|(_, e)| serde_json::from_slice(&e.payload).expect("logged event is JSON"))
        .collect()
}

async fn dead_letters(node: &Embedded) -> usize {
    node.store
        .dead_letters(&DeadLetterQuery {
            from: 0,
            to: 0,
            reason: None,
            after: None,
            limit: 100,
        })
        .await
        .expect("dead letters")
        .len()
}

/// (path, headers, body, expected status, what the reply says)
type BadPost<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);

const PROC_V1: &str = r#"{"projid":"3706K7","orgbusno":"R7","dataver":1,"sn":1,"nodename":"审核","nodetype":"2","nodeprocer":"PJ-S01","procunit":"BDC","nodestate":"02","nodestarttime":"2026-11-03 09:00:00","nodeendtime":"2026-11-03 10:00:00","noderesult":"1"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_payloads_reach_the_ingest_log_once_and_bad_ones_leave_nothing() {
    let dir = std::env::temp_dir().join(format!("jiancha-formats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = node(&dir).await;
    let t = token(&node, "qzk");

    // gdbs: an APPROVEDATAINFO form post in GBK (受理 + 办结).
    let (xml, _, _) = encoding_rs::GBK.encode(
        "<?xml version=\"1.0\" encoding=\"GBK\"?><APPROVEDATAINFO><SBLSH_SHORT>37K0009</SBLSH_SHORT>\
         <SXBM>P5</SXBM><XZQHDM>430626</XZQHDM><SHOULI><YWSLSJ>2026-11-02 09:30:00</YWSLSJ>\
         <YWSLRMC>李明</YWSLRMC><YWSLZT>1</YWSLZT><YWSLBMBM>BDC</YWSLBMBM><TJFS>0</TJFS></SHOULI>\
         <SPBANJIE><BJJGDM>0</BJJGDM><BJSJ>2026-11-04 16:00:00</BJSJ><BJBMZZJGDM>BDC</BJBMZZJGDM></SPBANJIE>\
         </APPROVEDATAINFO>",
    );
    let ct = ("Content-Type", "application/x-www-form-urlencoded");
    let path = "/api/v1/ingest/gdbs/approve/receiveBusinessFinish";
    let (st, reply) = post(&node, path, &[ct], &form(&xml, &t));
    assert_eq!(st, 200, "{reply}");
    assert!(reply.contains("<STATUS>200</STATUS>"), "{reply}");
    // Sent again (a sender's retry): durable once.
    let (st, reply) = post(&node, path, &[ct], &form(&xml, &t));
    assert_eq!(st, 200, "{reply}");
    assert!(reply.contains("<DUPLICATES>2</DUPLICATES>"), "{reply}");

    // sdjc: a step, its correction (DATAVER 2) and a deleted 办结 row.
    let json = [("token", t.as_str()), ("Content-Type", "application/json")];
    for (method, body) in [
        ("receiveProc", PROC_V1.to_string()),
        (
            "receiveProc",
            format!(
                "{{\"data\":[{}]}}",
                PROC_V1
                    .replace("\"dataver\":1", "\"dataver\":2")
                    .replace("\"noderesult\":\"1\"", "\"noderesult\":\"7\"")
            ),
        ),
        (
            "receiveDone",
            r#"{"projid":"3706K7","orgbusno":"R7","dataver":1,"doneresult":"0","occurtime":"2026-11-05 09:00:00","acceptdeptid":"BDC","cd_operation":"D"}"#.to_string(),
        ),
    ] {
        let (st, reply) = post(&node, &format!("/api/v1/ingest/sdjc/{method}"), &json, body.as_bytes());
        assert_eq!(st, 200, "{method}: {reply}");
        assert!(reply.contains(r#""code":"200""#), "{reply}");
    }
    let log = logged(&node).await;
    let ids: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
                e["supersedes"]
                    .as_str()
                    .or(e["withdraws"].as_str())
                    .unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("gdbs:SL:37K0009:20261102T093000:v1", "case.accepted", ""),
            ("gdbs:BJ:37K0009:v1", "case.completed", ""),
            ("sdjc:EA_JC_STEP_PROC:3706K7:R7:1:v1", "case.stage", ""),
            (
                "sdjc:EA_JC_STEP_PROC:3706K7:R7:1:v2",
                "case.stage",
                "sdjc:EA_JC_STEP_PROC:3706K7:R7:1:v1"
            ),
            (
                "sdjc:EA_JC_STEP_DONE:3706K7:R7:v1:withdrawn",
                "event.withdrawn",
                "sdjc:EA_JC_STEP_DONE:3706K7:R7:v1"
            ),
        ]
    );
    assert_eq!(log[0]["staff_id"], "PJ-S01", "GBK 李明 resolved");

    // A record with a code outside its table: a dead letter, named in the reply and shown to
    // the county's admin (it names the publisher, as POST /api/v1/events's do).
    let (st, reply) = post(
        &node,
        "/api/v1/ingest/sdjc/receiveProc",
        &json,
        PROC_V1
            .replace("\"sn\":1", "\"sn\":3")
            .replace("\"noderesult\":\"1\"", "\"noderesult\":\"9\"")
            .as_bytes(),
    );
    assert_eq!(st, 422, "{reply}");
    assert!(reply.contains("unmapped_code"), "{reply}");
    let admin = token(&node, "padm");
    let mut resp = ureq::get(&format!("http://{}/api/v1/dead-letters", node.addr))
        .header("Authorization", &format!("Bearer {admin}"))
        .call()
        .expect("dead letters");
    let listed: Value = resp.body_mut().read_json().expect("json");
    // (The engine's own refusals of the correction and withdrawal are listed too until it
    // applies corrections: only the one this endpoint refused is looked at.)
    let mine: Vec<&Value> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| {
            d["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("http:qzk:"))
        })
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(
        (mine[0]["reason"].as_str(), mine[0]["field"].as_str()),
        (Some("unmapped_code"), Some("NODERESULT"))
    );
    assert!(
        mine[0]["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("http:qzk:1#")),
        "{listed}"
    );

    // Nothing from a bad payload reaches the log or the dead letters (counted once the engine
    // has stored its own refusals of what is logged).
    caught_up(&node).await;
    let (end, dead) = (
        node.store.log_end().await.expect("end"),
        dead_letters(&node).await,
    );
    let bad: [BadPost<'_>; 4] = [
        (
            "/api/v1/ingest/gdbs/exinfo",
            vec![("token", t.as_str())],
            b"<ExInfo><standardInfo process=\"EX_GDBS_SL\"><Field FieldName=\"SBLSH\">K</Field></standardInfo>".to_vec(),
            400,
            "<CODE>malformed_xml</CODE>",
        ),
        (
            "/api/v1/ingest/gdbs/exinfo",
            vec![("token", t.as_str())],
            "<?xml version=\"1.0\" encoding=\"GB18030\"?><ExInfo><standardInfo process=\"EX_GDBS_SL\"><Field FieldName=\"BLRXM\">李明</Field></standardInfo></ExInfo>".as_bytes().to_vec(),
            400,
            "<CODE>mislabelled_encoding</CODE>",
        ),
        (path, vec![ct], form(&xml, "").split(|&b| b == b'&').next().unwrap_or_default().to_vec(), 401, "<STATUS>401</STATUS>"),
        (
            "/api/v1/ingest/sdjc/receiveProc",
            vec![("token", "not-a-token")],
            PROC_V1.as_bytes().to_vec(),
            401,
            r#""code":"401""#,
        ),
    ];
    for (path, headers, body, want, says) in bad {
        let (st, reply) = post(&node, path, &headers, &body);
        assert_eq!(st, want, "{path}: {reply}");
        assert!(reply.contains(says), "{path}: {reply}");
    }
    assert_eq!(
        node.store.log_end().await.expect("end"),
        end,
        "nothing logged"
    );
    assert_eq!(dead_letters(&node).await, dead, "no dead letter");
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// What corrections must do to alerts: a 不受理 step without a reason raises
/// `case.rejected_without_reason`; its re-report with DATAVER 2 carrying the reason retracts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_record_retracts_the_alert_its_first_version_raised() {
    let dir = std::env::temp_dir().join(format!("jiancha-formats-c-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = node(&dir).await;
    let t = token(&node, "qzk");
    let insp = token(&node, "insp");
    let json = [("token", t.as_str()), ("Content-Type", "application/json")];
    let step = r#"{"projid":"3706K8","orgbusno":"R8","dataver":1,"sn":1,"nodename":"受理","nodetype":"4","nodeprocer":"PJ-S01","procunit":"BDC","itemno":"P5","nodestate":"02","nodestarttime":"2026-11-03 09:00:00","nodeendtime":"2026-11-03 09:10:00","noderesult":"2"}"#;
    let (st, reply) = post(
        &node,
        "/api/v1/ingest/sdjc/receiveProc",
        &json,
        step.as_bytes(),
    );
    assert_eq!(st, 200, "{reply}");
    let status_of_rule = |rule: &str| {
        let mut resp = ureq::get(&format!(
            "http://{}/api/v1/alerts?status=open,acknowledged,supervising,resolved,dismissed,retracted&limit=100",
            node.addr
        ))
        .header("Authorization", &format!("Bearer {insp}"))
        .call()
        .expect("alerts");
        let body: Value = resp.body_mut().read_json().expect("json");
        body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["rule"] == rule)
            .map(|a| a["status"].as_str().unwrap_or("").to_string())
    };
    let mut fired = None;
    for _ in 0..100 {
        fired = status_of_rule("case.rejected_without_reason");
        if fired.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fired.as_deref(), Some("open"));
    let corrected = step.replace("\"dataver\":1", "\"dataver\":2").replace(
        "\"noderesult\":\"2\"",
        "\"noderesult\":\"2\",\"nodeadv\":\"材料不全\"",
    );
    let (st, reply) = post(
        &node,
        "/api/v1/ingest/sdjc/receiveProc",
        &json,
        corrected.as_bytes(),
    );
    assert_eq!(st, 200, "{reply}");
    let mut now = None;
    for _ in 0..100 {
        now = status_of_rule("case.rejected_without_reason");
        if now.as_deref() == Some("retracted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        now.as_deref(),
        Some("retracted"),
        "the correction retracts it"
    );
    tokio::task::block_in_place(|| node.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

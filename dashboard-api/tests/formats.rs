//! The formats' own endpoints (docs/ADAPTERS.md, "Endpoints") with real payload shapes: gdbs
//! `<ExInfo>` documents and `APPROVEDATAINFO` form posts in GBK, sdjc `receive*` JSON. Each is
//! answered in its own convention; events reach the sink with the adapter's ids (a higher
//! version superseding, a deletion withdrawing); a malformed, mis-encoded or unauthenticated
//! payload is refused in the format's reply and leaves nothing in the sink.

mod support;

use std::sync::Arc;

use dashboard_api::events::MemorySink;
use dashboard_api::formats::FormatSettings;
use dashboard_api::{ApiConfig, Directory};
use rules::{Reference, ReferenceFiles};
use serde_json::Value;
use support::{start, Server};

const ITEMS: &str = "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
P5,不动产转移登记,BDC,promised,20,working,5,working,,,,true,hall,,accept\n";

/// 平江 (430626) serves department BDC, 湘阴 (430624) department XBDC; 李明 is 平江's clerk.
fn reference() -> Reference {
    Reference::parse(&ReferenceFiles {
        items: Some(("items.csv".into(), ITEMS.into())),
        windows: Some((
            "windows.csv".into(),
            "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\nXY-W01,XY,430624,XBDC,true\n".into(),
        )),
        staff: Some((
            "staff.csv".into(),
            "staff_id,name,department,window_id,in_hall,center_id\nPJ-S01,李明,BDC,PJ-W01,true,\nXY-S01,王芳,XBDC,XY-W01,true,\n".into(),
        )),
        ..Default::default()
    })
    .expect("reference")
}

async fn server() -> (Server, Arc<MemorySink>) {
    let s = start(ApiConfig::default()).await;
    s.api.set_directory(
        Directory::from_reference(&Arc::new(reference()))
            .with_formats(FormatSettings::new(Vec::new(), None)),
    );
    let sink = Arc::new(MemorySink::default());
    s.api.set_event_sink(sink.clone());
    (s, sink)
}

/// POST raw bytes with these headers: (status, content type, body text).
async fn post(
    s: &Server,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String, String) {
    let url = s.url(path);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.post(&url);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let mut resp = req.send(&body[..]).expect("HTTP round trip");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.body_mut().read_to_string().expect("body");
        (resp.status().as_u16(), ct, text)
    })
    .await
    .expect("client thread")
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

/// The text between `<TAG>` and `</TAG>`.
fn tag<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let Some(start) = xml.find(&open) else {
        return "";
    };
    let rest = &xml[start + open.len()..];
    &rest[..rest.find(&format!("</{name}>")).unwrap_or(0)]
}

/// The events the sink holds, as JSON.
fn events(sink: &MemorySink) -> Vec<Value> {
    sink.received()
        .0
        .iter()
        .map(|a| serde_json::from_slice(&a.raw).expect("stored event is JSON"))
        .collect()
}

fn exinfo(records: &[(&str, &[(&str, &str)])], encoding: &str) -> String {
    let mut xml = format!("<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n<ExInfo>");
    for (process, fields) in records {
        xml.push_str(&format!("<standardInfo process=\"{process}\">"));
        for (k, v) in *fields {
            xml.push_str(&format!("<Field FieldName=\"{k}\">{v}</Field>"));
        }
        xml.push_str("</standardInfo>");
    }
    xml + "</ExInfo>"
}

const ACCEPT: &[(&str, &str)] = &[
    ("SBLSH", "44K0001"),
    ("SXBM", "P5"),
    ("XZQHDM", "430626"),
    ("SLBMZZJGDM", "BDC"),
    ("BLRXM", "李明"),
    ("SLZTDM", "1"),
    ("SLSJ", "2026-11-02 09:00:00"),
    ("BJDTBM", "PJ"),
    ("BJCKBM", "PJ-W01"),
    ("TJFS", "0"),
    ("INSERTTIME", "2026-11-02 09:01:00"),
];

const STEP: &[(&str, &str)] = &[
    ("SBLSH", "44K0001"),
    ("SXBM", "P5"),
    ("SPBMZZJDMD", "BDC"),
    ("SPHJDM", "1"),
    ("SPHJZTDM", "1"),
    ("SPRXM", "李明"),
    ("SPBZH", "1"),
    ("SPSJ", "2026-11-03 10:00:00"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_exinfo_records_become_events_answered_in_result_xml() {
    let (s, sink) = server().await;
    let token = s.token("pj-publisher");
    let body = gbk(&exinfo(
        &[("EX_GDBS_SL", ACCEPT), ("EX_GDBS_SPCL", STEP)],
        "GBK",
    ));
    let headers = [
        ("token", token.clone()),
        ("Content-Type", "text/xml; charset=GBK".to_string()),
    ];
    let (status, ct, reply) = post(&s, "/api/v1/ingest/gdbs/exinfo", &headers, body.clone()).await;
    assert_eq!(status, 200, "{reply}");
    assert!(ct.starts_with("application/xml"), "{ct}");
    assert_eq!(tag(&reply, "STATUS"), "200", "{reply}");
    assert_eq!(tag(&reply, "ACCEPTED"), "2", "{reply}");
    let got = events(&sink);
    let summary: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
                e["staff_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // 李明 arrived as GBK bytes and resolved through staff.csv: decoded, not mojibake.
    assert_eq!(
        summary,
        [
            (
                "gdbs:SL:44K0001:20261102T090000:v1",
                "case.accepted",
                "PJ-S01"
            ),
            ("gdbs:SPCL:44K0001:1:v1", "case.stage", "PJ-S01"),
        ]
    );
    assert_eq!(got[0]["reported_at"], "2026-11-02T09:01:00+08:00");
    assert_eq!(got[0]["window_id"], "PJ-W01");

    // The same document again: durable once, answered as duplicates.
    let (status, _, reply) = post(&s, "/api/v1/ingest/gdbs/exinfo", &headers, body).await;
    assert_eq!((status, tag(&reply, "DUPLICATES")), (200, "2"), "{reply}");
    assert_eq!(sink.received().0.len(), 2);

    // A re-report with VERSION 2 supersedes version 1 (a correction, SPEC §3).
    let mut v2: Vec<(&str, &str)> = STEP.to_vec();
    v2.push(("VERSION", "2"));
    v2.retain(|(k, _)| *k != "SPHJZTDM");
    v2.push(("SPHJZTDM", "3"));
    let body = gbk(&exinfo(&[("EX_GDBS_SPCL", &v2)], "GB18030"));
    let (status, _, reply) = post(&s, "/api/v1/ingest/gdbs/exinfo", &headers[..1], body).await;
    assert_eq!(status, 200, "{reply}");
    let got = events(&sink);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["event_id"], "gdbs:SPCL:44K0001:1:v2");
    assert_eq!(got[2]["supersedes"], "gdbs:SPCL:44K0001:1:v1");
    assert_eq!(got[2]["result"], "return");
}

/// (what, headers, body, expected status, expected CODE)
type XmlCase<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
/// (method, what, headers, body, expected status)
type JsonCase<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, &'a str, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_and_tokens_get_the_formats_error_replies_and_store_nothing() {
    let (s, sink) = server().await;
    let token = s.token("pj-publisher");
    let good = exinfo(&[("EX_GDBS_SL", ACCEPT)], "GBK");
    let with_token = [("token", token.clone())];
    let cases: Vec<XmlCase<'_>> = vec![
        (
            "malformed XML",
            with_token.to_vec(),
            gbk(&good.replace("</ExInfo>", "")),
            400,
            "malformed_xml",
        ),
        (
            "GBK bytes declared UTF-8",
            with_token.to_vec(),
            gbk(&good.replace("encoding=\"GBK\"", "encoding=\"UTF-8\"")),
            400,
            "bad_encoding",
        ),
        (
            "UTF-8 bytes declared GBK (mislabelled)",
            with_token.to_vec(),
            good.clone().into_bytes(),
            400,
            "mislabelled_encoding",
        ),
        (
            "an encoding the formats do not use",
            with_token.to_vec(),
            good.replace("GBK", "Big5").into_bytes(),
            400,
            "bad_encoding",
        ),
        ("no token", Vec::new(), gbk(&good), 401, "unauthorized"),
        (
            "a forged token",
            vec![("token", format!("{token}x"))],
            gbk(&good),
            401,
            "unauthorized",
        ),
        (
            "an inspector's token",
            vec![("token", s.token("pj-inspector"))],
            gbk(&good),
            403,
            "forbidden",
        ),
    ];
    for (what, headers, body, want, code) in cases {
        let (status, ct, reply) = post(&s, "/api/v1/ingest/gdbs/exinfo", &headers, body).await;
        assert_eq!(status, want, "{what}: {reply}");
        assert!(ct.starts_with("application/xml"), "{what}: {ct}");
        assert_eq!(tag(&reply, "STATUS"), want.to_string(), "{what}: {reply}");
        assert_eq!(tag(&reply, "CODE"), code, "{what}: {reply}");
        assert!(!tag(&reply, "DESC").is_empty(), "{what}: {reply}");
    }
    // sdjc: a body that is not JSON, an SM2-encrypted body, no token, an unknown method.
    let cases: Vec<JsonCase<'_>> = vec![
        (
            "receiveProc",
            "not JSON",
            with_token.to_vec(),
            "{\"projid\":",
            400,
        ),
        (
            "receiveProc",
            "encrypted",
            with_token.to_vec(),
            "{\"data\":\"BASE64SM2CIPHERTEXT==\"}",
            400,
        ),
        (
            "receiveProc",
            "no token",
            Vec::new(),
            "{\"projid\":\"K\"}",
            401,
        ),
        (
            "receiveNothing",
            "unknown method",
            with_token.to_vec(),
            "{}",
            404,
        ),
    ];
    for (method, what, headers, body, want) in cases {
        let (status, ct, reply) = post(
            &s,
            &format!("/api/v1/ingest/sdjc/{method}"),
            &headers,
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(status, want, "{what}: {reply}");
        assert!(ct.starts_with("application/json"), "{what}: {ct}");
        let reply: Value = serde_json::from_str(&reply).expect("JSON reply");
        assert_eq!(reply["code"], want.to_string(), "{what}: {reply}");
        assert!(
            reply["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
    }
    let (accepted, refused) = sink.received();
    assert!(
        accepted.is_empty() && refused.is_empty(),
        "nothing stored: {accepted:?} {refused:?}"
    );
}

/// `xmlStr=<APPROVEDATAINFO>…&accessToken=…` as a Java client sends it: the XML in GBK,
/// percent-encoded byte by byte.
fn form(xml: &[u8], token: Option<&str>) -> Vec<u8> {
    let mut out = b"xmlStr=".to_vec();
    for &b in xml {
        if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) {
            out.push(b);
        } else if b == b' ' {
            out.push(b'+');
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    if let Some(t) = token {
        out.extend(format!("&accessToken={t}").bytes());
    }
    out
}

fn approve_doc(region: &str, department: &str) -> Vec<u8> {
    gbk(&format!(
        "<?xml version=\"1.0\" encoding=\"GBK\"?>\n<APPROVEDATAINFO>\
         <SBLSH_SHORT>37K0009</SBLSH_SHORT><SXBM>P5</SXBM><XZQHDM>{region}</XZQHDM>\
         <SHOULI><YWSLSJ>2026-11-02 09:30:00</YWSLSJ><YWSLRMC>李明</YWSLRMC><YWSLZT>1</YWSLZT>\
         <YWSLBMBM>{department}</YWSLBMBM><YWSLYJ>材料齐全，予以受理</YWSLYJ><TJFS>0</TJFS></SHOULI>\
         <SPBANJIE><BJJGDM>0</BJJGDM><BJSJ>2026-11-04 16:00:00</BJSJ><BJBMZZJGDM>{department}</BJBMZZJGDM></SPBANJIE>\
         </APPROVEDATAINFO>"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvedatainfo_form_posts_are_scoped_to_the_publisher() {
    let (s, sink) = server().await;
    let token = s.token("pj-publisher");
    let path = "/api/v1/ingest/gdbs/approve/receiveBusinessAccept";
    let ct = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let (status, _, reply) = post(
        &s,
        path,
        &ct,
        form(&approve_doc("430626", "BDC"), Some(&token)),
    )
    .await;
    assert_eq!((status, tag(&reply, "STATUS")), (200, "200"), "{reply}");
    let got = events(&sink);
    let kinds: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["center_id"].as_str().unwrap_or(""),
                e["staff_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("case.accepted", "PJ", "PJ-S01"),
            ("case.completed", "PJ", "")
        ]
    );
    assert_eq!(got[0]["case_id"], "37K0009");

    // A record of 湘阴's department from 平江's publisher: refused as out of scope, kept as a
    // dead letter, and the reply names it.
    let (status, _, reply) = post(
        &s,
        path,
        &ct,
        form(&approve_doc("430624", "XBDC"), Some(&token)),
    )
    .await;
    assert_eq!((status, tag(&reply, "STATUS")), (422, "422"), "{reply}");
    assert_eq!(tag(&reply, "REJECTED"), "2", "{reply}");
    assert_eq!(
        tag(tag(&reply, "ERROR"), "REASON"),
        "out_of_scope",
        "{reply}"
    );
    assert_eq!(sink.received().0.len(), 2, "no event of 湘阴 stored");
    assert_eq!(sink.received().1.len(), 2, "two dead letters");

    // The token travels in the form: without it, or without xmlStr, nothing is stored.
    let before = sink.received();
    let (status, _, reply) = post(&s, path, &ct, form(&approve_doc("430626", "BDC"), None)).await;
    assert_eq!((status, tag(&reply, "STATUS")), (401, "401"), "{reply}");
    let (status, _, reply) = post(&s, path, &ct, format!("accessToken={token}").into_bytes()).await;
    assert_eq!(
        (status, tag(&reply, "CODE")),
        (400, "no_records"),
        "{reply}"
    );
    let (status, _, reply) = post(
        &s,
        "/api/v1/ingest/gdbs/approve/receiveAnything",
        &ct,
        Vec::new(),
    )
    .await;
    assert_eq!((status, tag(&reply, "STATUS")), (404, "404"), "{reply}");
    let after = sink.received();
    assert_eq!(
        (before.0.len(), before.1.len()),
        (after.0.len(), after.1.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdjc_receive_methods_take_json_records_and_answer_codes() {
    let (s, sink) = server().await;
    let token = [("token", s.token("pj-publisher"))];
    let basic = r#"{"projid":"3706K01","orgbusno":"R1","dataver":1,"itemno":"P5","acceptdeptid":"BDC","approvaltype":"2","promisetimelimit":5,"promisetimeunit":"1","timelimit":20,"timeunit":"G","submit":"0","occurtime":"2026-11-02 09:00:00","maketime":"2026-11-02 09:05:00","transactor":"李明","region_id":"430626000000"}"#;
    let (status, _, reply) = post(
        &s,
        "/api/v1/ingest/sdjc/receiveBasicInfo",
        &token,
        basic.into(),
    )
    .await;
    let reply: Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(
        (status, reply["code"].as_str()),
        (200, Some("200")),
        "{reply}"
    );

    // Two steps in {"data": [...]}: the second carries a code outside its table.
    let procs = r#"{"data":[
        {"projid":"3706K01","orgbusno":"R1","dataver":1,"sn":1,"nodename":"审核","nodetype":"2","nodeprocer":"PJ-S01","procunit":"BDC","nodestate":"02","nodestarttime":"2026-11-03 09:00:00","nodeendtime":"2026-11-03 10:00:00","noderesult":"1"},
        {"projid":"3706K01","orgbusno":"R1","dataver":1,"sn":2,"nodename":"批准","nodetype":"3","nodeprocer":"PJ-S01","procunit":"BDC","nodestate":"02","nodestarttime":"2026-11-04 09:00:00","nodeendtime":"2026-11-04 10:00:00","noderesult":"9"}]}"#;
    let (status, _, reply) =
        post(&s, "/api/v1/ingest/sdjc/receiveProc", &token, procs.into()).await;
    let reply: Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(
        (status, reply["code"].as_str()),
        (422, Some("422")),
        "{reply}"
    );
    let rejected: Vec<(u64, &str, &str)> = reply["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["status"] == "rejected")
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["reason"].as_str().unwrap_or(""),
                r["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(rejected, [(2, "unmapped_code", "NODERESULT")]);
    let (_, dead) = sink.received();
    assert_eq!(dead.len(), 1);
    assert!(
        String::from_utf8_lossy(&dead[0].raw).contains("\"noderesult\":\"9\""),
        "the dead letter keeps the record as a row: {:?}",
        String::from_utf8_lossy(&dead[0].raw)
    );

    // A deleted 办结 row (CD_OPERATION D) withdraws what the row gave.
    let done = r#"{"projid":"3706K01","orgbusno":"R1","dataver":1,"doneresult":"0","occurtime":"2026-11-05 09:00:00","transactor":"李明","acceptdeptid":"BDC","cd_operation":"D"}"#;
    let (status, _, reply) = post(&s, "/api/v1/ingest/sdjc/receiveDone", &token, done.into()).await;
    assert_eq!(status, 200, "{reply}");
    let got = events(&sink);
    let ids: Vec<(&str, &str)> = got
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("sdjc:EA_JC_STEP_BASICINFO:3706K01:R1:v1", "case.accepted"),
            ("sdjc:EA_JC_STEP_PROC:3706K01:R1:1:v1", "case.stage"),
            (
                "sdjc:EA_JC_STEP_DONE:3706K01:R1:v1:withdrawn",
                "event.withdrawn"
            ),
        ]
    );
    assert_eq!(got[0]["staff_id"], "PJ-S01");
    assert_eq!(got[2]["withdraws"], "sdjc:EA_JC_STEP_DONE:3706K01:R1:v1");
}

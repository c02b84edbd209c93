//! The upward export (SPEC §9 Outbound, docs/API.md "Upward export"): a known set of stored
//! alerts and actions of two counties, exported by `jiancha export --data` and by
//! `GET /api/v1/export/gb39046`, equals the hand-written `tests/export/gb39046_430626.ndjson`
//! for 平江 (430626); 湘阴's (430624) alerts and 督办 never appear in it, while the city sees
//! both (so an empty answer is not mistaken for scoping).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use dashboard_api::auth::{hash_password, Region, Role, TokenKey, User, Users};
use node::embedded::{start, Clock, EmbeddedConfig};
use rules::time::parse_rfc3339;
use rules::{Policy, Reference, ReferenceFiles};
use store::rows::{seconds, ActionRow, AlertRow};
use store::Store as _;

const PASSWORD: &str = "export-password";

fn at(s: &str) -> u32 {
    seconds(parse_rfc3339(s).expect("time"))
}

#[allow(clippy::too_many_arguments)]
fn alert(
    id: &str,
    rule: &str,
    level: &str,
    status: &str,
    fired: &str,
    (center, region, department, case): (&str, &str, &str, &str),
    message: &str,
    evidence: &str,
) -> AlertRow {
    AlertRow {
        alert_id: id.into(),
        rule: rule.into(),
        level: level.into(),
        status: status.into(),
        version: if status == "open" { 0 } else { 2 },
        fired_at: at(fired),
        center_id: center.into(),
        region: region.into(),
        department: department.into(),
        window_id: String::new(),
        staff_id: String::new(),
        case_id: case.into(),
        item_code: String::new(),
        subject: format!(r#"{{"case_id":"{case}"}}"#),
        message: message.into(),
        evidence: evidence.into(),
    }
}

/// 平江's four alerts (one cleared, one retracted, a yellow card with a 督办, a red card naming
/// no department) and 湘阴's yellow card with a 督办 of its own.
fn alerts() -> Vec<AlertRow> {
    let pj = |case| ("PJ", "430626", "BDC", case);
    vec![
        alert(
            "3f9a1c0e5b7d2a4c6e8f0a1b2c3d4e5f",
            "case.overdue",
            "warning",
            "cleared",
            "2026-11-03T00:00:00+08:00",
            pj("PJ-C1"),
            "预警：办件 PJ-C1 将于 2026-11-03 届满",
            r#"{"cleared_by":{"kind":"case.completed","occurred_at":"2026-11-03T15:00:00+08:00"}}"#,
        ),
        alert(
            "7c2e4a6b8d0f1a3c5e7a9b1d3f5a7c9e",
            "case.overdue",
            "yellow",
            "open",
            "2026-11-04T00:00:00+08:00",
            pj("PJ-C2"),
            "黄牌：办件 PJ-C2 已超过承诺时限",
            "{}",
        ),
        alert(
            "1b3d5f7a9c2e4a6c8e0a2c4e6a8c0e2a",
            "case.stage_overdue",
            "yellow",
            "retracted",
            "2026-11-02T12:00:00+08:00",
            pj("PJ-C3"),
            "黄牌：办件 PJ-C3 审核环节超过环节时限",
            "{}",
        ),
        alert(
            "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
            "case.overdue",
            "red",
            "open",
            "2026-11-07T00:00:00+08:00",
            ("PJ", "430626", "", "PJ-C2"),
            "红牌：办件 PJ-C2 超过承诺时限后 3 个工作日督办期仍未办结",
            "{}",
        ),
        alert(
            "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            "case.overdue",
            "yellow",
            "open",
            "2026-11-04T00:00:00+08:00",
            ("XY", "430624", "BDC", "XY-C1"),
            "黄牌：办件 XY-C1 已超过承诺时限",
            "{}",
        ),
    ]
}

fn action(alert_id: &str, kind: &str, when: &str, note: &str, region: &str) -> ActionRow {
    ActionRow {
        alert_id: alert_id.into(),
        action: kind.into(),
        actor: "inspector".into(),
        at: at(when),
        reason: note.into(),
        reply_deadline: if kind == "supervise" {
            at("2026-11-06T17:30:00+08:00")
        } else {
            0
        },
        region: region.into(),
    }
}

/// A 签收 (not a 督办: not exported) and a 督办 in 平江; a 督办 in 湘阴.
fn actions() -> Vec<ActionRow> {
    vec![
        action(
            "7c2e4a6b8d0f1a3c5e7a9b1d3f5a7c9e",
            "acknowledge",
            "2026-11-04T09:00:00+08:00",
            "",
            "430626",
        ),
        action(
            "7c2e4a6b8d0f1a3c5e7a9b1d3f5a7c9e",
            "supervise",
            "2026-11-04T09:30:00+08:00",
            "请于11月6日前办结并说明超期原因",
            "430626",
        ),
        action(
            "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            "supervise",
            "2026-11-04T10:00:00+08:00",
            "湘阴督办：请说明原因",
            "430624",
        ),
    ]
}

fn users() -> Users {
    let hash = hash_password(PASSWORD).expect("hash");
    let mut users = Users::default();
    for (name, region) in [("pj-auditor", "430626"), ("city-auditor", "4306")] {
        users.upsert(User {
            username: name.into(),
            name: name.into(),
            role: Role::Auditor,
            region: Region::try_from(region.to_string()).expect("region"),
            password_hash: hash.clone(),
            token_epoch: 0,
        });
    }
    users
}

fn reference() -> Reference {
    Reference::parse(&ReferenceFiles {
        items: Some((
            "items.csv".into(),
            "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
             P1,不动产查询,BDC,promised,5,working,1,working,,,,true,hall,,accept\n"
                .into(),
        )),
        windows: Some((
            "windows.csv".into(),
            "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\nXY-W01,XY,430624,BDC,true\n".into(),
        )),
        ..Default::default()
    })
    .expect("reference")
}

fn expected() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/gb39046_430626.ndjson");
    std::fs::read_to_string(path).expect("expected file")
}

/// 湘阴's marks: its region, centre, case and 督办 text.
fn assert_no_xy(what: &str, text: &str) {
    for mark in ["430624", "XY", "湘阴"] {
        assert!(!text.contains(mark), "{what} shows {mark:?}:\n{text}");
    }
}

fn get(base: &str, path: &str, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("request");
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().expect("body"),
    )
}

fn token(base: &str, user: &str) -> String {
    let mut r = ureq::post(&format!("{base}/api/v1/auth/login"))
        .send_json(serde_json::json!({"username": user, "password": PASSWORD}))
        .expect("login");
    let v: serde_json::Value = r.body_mut().read_json().expect("json");
    v["token"].as_str().expect("token").to_string()
}

fn export_file(data: &Path, region: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jiancha"))
        .args(["export", "--format", "gb39046", "--data"])
        .arg(data)
        .args(["--region", region])
        .output()
        .expect("run jiancha export");
    assert!(
        out.status.success(),
        "jiancha export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_the_hand_written_dataset_and_only_the_callers_region() {
    let dir: PathBuf = std::env::temp_dir().join(format!("jiancha-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = EmbeddedConfig::new(
        dir.join("data"),
        Arc::new(reference()),
        Policy::default(),
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("users.toml"),
        users(),
        TokenKey::new(&[9u8; 32]).expect("key"),
    );
    cfg.clock = Clock::Event;
    let node = start(cfg).await.expect("start");
    node.store.insert_alerts(&alerts()).await.expect("alerts");
    node.store
        .insert_actions(&actions())
        .await
        .expect("actions");
    let base = format!("http://{}", node.addr);
    let want = expected();

    tokio::task::block_in_place(|| {
        let pj = token(&base, "pj-auditor");
        let (status, text) = get(&base, "/api/v1/export/gb39046?month=2026-11", &pj);
        assert_eq!(status, 200, "{text}");
        assert_eq!(text, want, "the API's export for 平江");
        assert_no_xy("平江's API export", &text);
        // Asking for 湘阴 is refused, not answered empty.
        let (status, text) = get(&base, "/api/v1/export/gb39046?region=430624", &pj);
        assert_eq!(status, 403, "{text}");
        // A month without alerts is an empty dataset; a bad month a JSON error.
        let (status, text) = get(&base, "/api/v1/export/gb39046?month=2026-12", &pj);
        assert_eq!((status, text.as_str()), (200, ""));
        let (status, text) = get(&base, "/api/v1/export/gb39046?month=2026-13", &pj);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("month"), "{text}");
        // The city sees both counties: 湘阴's yellow card and its 督办 are there to leak.
        let city = token(&base, "city-auditor");
        let (status, text) = get(&base, "/api/v1/export/gb39046?month=2026-11", &city);
        assert_eq!(status, 200, "{text}");
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.contains("湘阴督办：请说明原因"), "{text}");
    });
    node.shutdown();

    // The file, from the same data directory.
    let data = dir.join("data");
    let file = export_file(&data, "430626");
    assert_eq!(file, want, "jiancha export --region 430626");
    assert_no_xy("平江's file", &file);
    let city = export_file(&data, "4306");
    assert_eq!(city.lines().count(), 7, "{city}");
    assert!(city.contains("\"行政区划\":\"430624\""), "{city}");
    let _ = std::fs::remove_dir_all(&dir);
}

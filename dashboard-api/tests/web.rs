//! The dashboards as served: pages and assets built in, locked to this origin, and the directory
//! of names scoped like every other answer. (What the pages do is tested in a real browser by
//! the root package's `tests/web.rs`.)

mod support;

use dashboard_api::{ApiConfig, Directory};
use rules::{Reference, ReferenceFiles};
use support::start;

const ITEMS: &str = "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n\
P5,不动产转移登记,BDC,promised,20,working,5,working,,,,true,hall,,accept\n";

/// Two counties: 平江 (430626) and 湘阴 (430624), each with a centre, a window and a clerk, and
/// one back-office member of 平江's department (placed there by the `center_id` column).
fn reference() -> Reference {
    Reference::parse(&ReferenceFiles {
        items: Some(("items.csv".into(), ITEMS.into())),
        windows: Some((
            "windows.csv".into(),
            "window_id,center_id,region,department,in_hall\nPJ-W01,PJ,430626,BDC,true\nXY-W01,XY,430624,BDC,true\n".into(),
        )),
        staff: Some((
            "staff.csv".into(),
            "staff_id,name,department,window_id,in_hall,center_id\nPJ-S01,李明,BDC,PJ-W01,true,\nXY-S01,王芳,BDC,XY-W01,true,\nB01,赵强,BDC,,false,PJ\n".into(),
        )),
        departments: Some(("departments.csv".into(), "department,name\nBDC,不动产登记中心\n".into())),
        centers: Some(("centers.csv".into(), "center_id,name\nPJ,平江县政务服务中心\n".into())),
        ..Default::default()
    })
    .expect("reference")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_names_only_what_is_in_the_callers_jurisdiction() {
    let s = start(ApiConfig::default()).await;
    s.api
        .set_directory(Directory::from_reference(&std::sync::Arc::new(reference())));

    let (status, pj) = s.get("/api/v1/directory", "pj-leader").await;
    assert_eq!(status, 200, "{pj}");
    assert_eq!(
        pj["centers"],
        serde_json::json!([{"center_id": "PJ", "name": "平江县政务服务中心", "region": "430626"}])
    );
    let windows: Vec<&str> = pj["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .filter_map(|w| w["window_id"].as_str())
        .collect();
    assert_eq!(windows, ["PJ-W01"]);
    assert_eq!(
        pj["staff"],
        serde_json::json!({"B01": "赵强", "PJ-S01": "李明"}),
        "平江's window and back-office staff, not 湘阴's"
    );
    assert_eq!(pj["departments"]["BDC"], "不动产登记中心");
    assert_eq!(pj["items"]["P5"], "不动产转移登记");
    assert_eq!(pj["rules"]["case.overdue"], "办件超时");
    assert_eq!(pj["levels"]["red"], "红牌");

    // The city sees both counties; a centre without a name in centers.csv is named by its id.
    let (_, city) = s.get("/api/v1/directory", "yy-leader").await;
    let names: Vec<&str> = city["centers"]
        .as_array()
        .expect("centers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["平江县政务服务中心", "XY"]);
    assert_eq!(
        city["staff"],
        serde_json::json!({"B01": "赵强", "PJ-S01": "李明", "XY-S01": "王芳"}),
        "the city names the staff of both counties"
    );

    // No token, no names; a publisher sees no dashboard data.
    let (status, _) = s.call("GET", "/api/v1/directory", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = s.get("/api/v1/directory", "pj-publisher").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_without_auth_and_locked_to_this_origin() {
    let s = start(ApiConfig::default()).await;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let get = |path: &str, accept: &str| {
        let url = s.url(path);
        let agent = agent.clone();
        let accept = accept.to_string();
        std::thread::spawn(move || {
            let mut r = agent
                .get(&url)
                .header("Accept", &accept)
                .call()
                .expect("HTTP");
            let header = |n: &str| {
                r.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let (ct, csp, location) = (
                header("content-type"),
                header("content-security-policy"),
                header("location"),
            );
            let body = r.body_mut().read_to_string().unwrap_or_default();
            (r.status().as_u16(), ct, csp, location, body)
        })
        .join()
        .expect("client")
    };
    // A browser at the root goes to the login page; a program still gets the JSON index.
    let (status, _, _, location, _) = get("/", "text/html,application/xhtml+xml");
    assert_eq!((status, location.as_str()), (303, "/ui/"));
    let (status, ct, _, _, body) = get("/", "application/json");
    assert_eq!(status, 200);
    assert!(
        ct.starts_with("application/json") && body.contains("openapi"),
        "{body}"
    );

    for page in ["/ui/", "/ui/leader", "/ui/inspector", "/ui/auditor"] {
        let (status, ct, csp, _, body) = get(page, "text/html");
        assert_eq!(status, 200, "{page}");
        assert_eq!(ct, "text/html; charset=utf-8", "{page}");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(body.contains("<html lang=\"zh-CN\">"), "{page}");
    }
    let (status, ct, _, _, body) = get("/ui/assets/common.js", "*/*");
    assert_eq!(
        (status, ct.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(body.contains("export async function api"));
    let (status, _, _, _, body) = get("/ui/nowhere", "text/html");
    assert_eq!(status, 404);
    assert!(body.contains("返回登录"));
    let (status, ct, _, _, _) = get("/ui/assets/../src/lib.rs", "*/*");
    assert_eq!(status, 404);
    assert!(ct.starts_with("application/json") || ct.starts_with("text/html"));
}
